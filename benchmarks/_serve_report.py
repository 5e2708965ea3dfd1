"""The serving benchmark's table, the ratios assay / reference, and issues 3's and 13's targets."""

from __future__ import annotations

from _load import Result

SCENARIOS = [(1, 1), (8, 1), (1, 256), (8, 256)]  # (concurrency, rows per request)


def report(results: list[Result]) -> None:
    by_key = {(r.server, r.concurrency, r.rows): r for r in results}
    print("\nserver         conc  rows    req/s   rows/s   p50 ms   p99 ms  cpu ms/req  errors")
    for r in results:
        print(
            f"{r.server:13s} {r.concurrency:5d} {r.rows:5d} {r.throughput:8.1f} "
            f"{r.throughput * r.rows:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_ms:11.2f}"
            f" {r.errors:7d}"
        )
    for reference in ("assay-kserve-route", "mlserver", "kserve-plain"):
        print(f"\nassay / {reference}:  throughput x  p50 ratio  p99 ratio  cpu/req ratio")
        for concurrency, rows in SCENARIOS:
            ours = by_key.get(("assay", concurrency, rows))
            theirs = by_key.get((reference, concurrency, rows))
            if ours and theirs:
                print(
                    f"  c={concurrency} rows={rows:3d}  {ours.throughput / theirs.throughput:12.2f}"
                    f"  {ours.p50_ms / theirs.p50_ms:9.2f}  {ours.p99_ms / theirs.p99_ms:9.2f}"
                    f"  {ours.cpu_ms / theirs.cpu_ms:13.2f}"
                )
    print_targets(by_key)


def print_targets(by_key: dict[tuple[str, int, int], Result]) -> None:
    ours8, ml8 = by_key.get(("assay", 8, 1)), by_key.get(("mlserver", 8, 1))
    ours1, ml1 = by_key.get(("assay", 1, 1)), by_key.get(("mlserver", 1, 1))
    if not (ours8 and ml8 and ours1 and ml1):
        return
    ratio = ours8.throughput / ml8.throughput
    print(
        f"\nissue 13 (c=8, single row): assay {ours8.throughput:.1f} req/s, p50 "
        f"{ours8.p50_ms:.2f} ms, p99 {ours8.p99_ms:.2f} ms; MLServer {ml8.throughput:.1f} req/s, "
        f"p99 {ml8.p99_ms:.2f} ms"
    )
    for text, met in (
        (f"assay p99 < 25 ms: {ours8.p99_ms:.2f} ms", ours8.p99_ms < 25),
        (f"assay throughput >= 6x MLServer's: {ratio:.2f}x", ratio >= 6),
    ):
        print(f"  {'PASS' if met else 'FAIL'}  {text}")
    checks = [
        (
            f"c=8 single-row p99 below MLServer's: {ours8.p99_ms:.2f} vs {ml8.p99_ms:.2f} ms",
            ours8.p99_ms < ml8.p99_ms,
        ),
        (
            f"c=1 single-row p50 <= MLServer's: {ours1.p50_ms:.2f} vs {ml1.p50_ms:.2f} ms",
            ours1.p50_ms <= ml1.p50_ms,
        ),
    ]
    print("\ntargets (issue 3):")
    for text, met in checks:
        print(f"  {text}  {'met' if met else 'NOT met'}")
