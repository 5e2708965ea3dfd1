"""LLM fan-out throughput against the simulated endpoint: assay vs LiteLLM's Router vs a naive
ThreadPoolExecutor(10) + tenacity loop, side by side in ONE run.

Each contender runs in its own process against its own simulated endpoint (started here, on
127.0.0.1), all three at the same time, so they share the machine equally. Every endpoint serves
3 simulated models, each limited by the SERVER to ``--rpm`` requests over a rolling 60 s window
(excess requests get 429 and are counted as violations), with 10% HTTP 500 and 5% 429 +
Retry-After injected. Every contender is configured to the same limit and is given the same work:
enough passages x 3 raters to keep the limit busy for ``--duration`` seconds.

Printed per contender, all measured by the server except latency and lost:
  utilisation   admitted requests per model per minute / rpm, over the span from the first to the
                last request the server saw (the rate-limit ceiling is 1.00)
  best 60 s     the most requests admitted per model in any 60 s window / rpm (when span >= 60 s)
  violations    requests the server rejected for exceeding the rolling-window limit
  ok / failed   valid ratings / ratings recorded as failed with a reason (assay only)
  lost          ratings that neither arrived nor were recorded as failed
  p50/p99/max   seconds from sending a rating task to its result (waits and retries included)

Usage: python benchmarks/llm_bench.py [--quick] [--duration S] [--rpm N] [--assay-local]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _llm_contenders import MODELS, contender

CONTENDERS = ("assay", "litellm", "naive")
IN_FLIGHT = (
    30  # default for assay and LiteLLM: rating tasks in flight; the naive loop has 10 threads
)


# --- the parent: sims, contenders, report -------------------------------------------------------


def main() -> None:
    args = _parse_args()
    duration = 30.0 if args.quick else args.duration
    per_model = max(20, int(duration * args.rpm / 60 * 0.85))
    from assay.sim import FaultRates, SimConfig, SimModelConfig, start_sim_server

    faults = FaultRates(server_error=0.10, rate_limit=0.05)
    config = SimConfig(
        seed=11,
        models=[
            SimModelConfig(
                name=m, rpm=args.rpm, latency_s=0.03, latency_jitter_s=0.02, faults=faults
            )
            for m in MODELS
        ],
    )
    print(
        f"llm_bench: 3 models x {args.rpm} rpm (rolling 60 s, enforced by the server), "
        f"10% 500 + 5% 429 injected, {per_model} passages x 3 raters per contender, "
        f"target ~{duration:.0f} s each, {args.in_flight} tasks in flight, run concurrently",
        flush=True,
    )
    sims = {name: start_sim_server(config=config, in_subprocess=True) for name in CONTENDERS}
    try:
        work = Path(tempfile.mkdtemp(prefix="llm-bench-"))
        procs = {"assay": _launch("assay", sims["assay"].base_url, per_model, args, work)}
        _wait_for(work / "assay.ready", procs["assay"])  # Ray starts before the others load
        for name in CONTENDERS[1:]:
            procs[name] = _launch(name, sims[name].base_url, per_model, args, work)
        results: dict[str, Any] = {}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=duration * 10 + 600)
            line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(f"{name} failed (exit {proc.returncode}):\n{out[-2000:]}", file=sys.stderr)
                results[name] = None
                continue
            results[name] = json.loads(line[len("RESULT ") :])
            results[name]["server"] = sims[name].stats()
    finally:
        for sim in sims.values():
            sim.stop()
    _report(results, per_model * len(MODELS), args.rpm)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of work each")
    parser.add_argument("--quick", action="store_true", help="~30 s of work each")
    parser.add_argument("--rpm", type=int, default=600, help="server limit per model")
    parser.add_argument("--assay-local", action="store_true", help="assay without Ray")
    parser.add_argument(
        "--in-flight", type=int, default=IN_FLIGHT, help="tasks in flight (assay, LiteLLM)"
    )
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--sim-url", help=argparse.SUPPRESS)
    parser.add_argument("--per-model", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args()


def _launch(
    name: str, url: str, per_model: int, args: argparse.Namespace, work: Path
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        __file__,
        "--contender",
        name,
        "--sim-url",
        url,
        "--per-model",
        str(per_model),
        "--rpm",
        str(args.rpm),
        "--work",
        str(work / name),
        "--in-flight",
        str(args.in_flight),
    ]
    if args.assay_local:
        cmd.append("--assay-local")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _wait_for(flag: Path, proc: subprocess.Popen[str], timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)


def _window_stats(stats: dict[str, Any], rpm: int) -> dict[str, float]:
    utilisation, best, violations, spans = [], [], 0, []
    for model in MODELS:
        s = stats["models"][model]
        violations += s["violations"]
        timeline = {t["second"]: t["requests"] - t["violations"] for t in s["timeline"]}
        if not timeline:
            continue
        first, last = min(timeline), max(timeline)
        span = last - first + 1
        spans.append(span)
        admitted = sum(timeline.values())
        utilisation.append(admitted / span * 60 / rpm)
        if span >= 60:
            windows = [
                sum(timeline.get(sec, 0) for sec in range(start, start + 60))
                for start in range(first, last - 58)
            ]
            best.append(max(windows) / rpm)
    return {
        "utilisation": sum(utilisation) / len(utilisation) if utilisation else 0.0,
        "best60": sum(best) / len(best) if best else float("nan"),
        "violations": violations,
        "span": max(spans) if spans else 0,
    }


def _report(results: dict[str, Any], expected: int, rpm: int) -> None:
    header = (
        f"{'contender':<10} {'span s':>7} {'utilisation':>11} {'best 60 s':>9} "
        f"{'violations':>10} {'ok':>6} {'failed':>6} {'lost':>5} "
        f"{'p50 s':>6} {'p99 s':>6} {'max s':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = {}
    for name, res in results.items():
        if res is None:
            print(f"{name:<10} (did not finish)")
            continue
        w = _window_stats(res["server"], rpm)
        lost = expected - res["ok"] - res["failed"]
        lat = res["latency"]
        rows[name] = w["utilisation"]
        print(
            f"{name:<10} {w['span']:>7} {w['utilisation']:>11.3f} {w['best60']:>9.3f} "
            f"{w['violations']:>10} {res['ok']:>6} {res['failed']:>6} {lost:>5} "
            f"{lat['p50']:>6.2f} {lat['p99']:>6.2f} {lat['max']:>6.2f}"
        )
    if any(_window_stats(r["server"], rpm)["span"] < 90 for r in results.values() if r):
        print(
            "note: a run shorter than ~90 s fits in one 60 s window, so per-minute bursting "
            "(send a minute's quota at once, then stall) is neither penalised nor visible; "
            "use the default duration for the comparison."
        )
    if "assay" in rows and "litellm" in rows and rows["litellm"]:
        print(f"assay / LiteLLM utilisation: {rows['assay'] / rows['litellm']:.2f}")
    if "assay" in rows and "naive" in rows and rows["naive"]:
        print(f"assay / naive utilisation:   {rows['assay'] / rows['naive']:.2f}")


if __name__ == "__main__":
    parsed = _parse_args()
    if parsed.contender:
        contender(parsed)
    else:
        main()
