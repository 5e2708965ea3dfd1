"""Scaling curves: how the cost of every stage grows with the data, measured on this machine.

    python benchmarks/scaling.py --quick               # every curve, small sizes (under 10 min)
    python benchmarks/scaling.py                       # 10^3 .. 10^5 passages, 10^6 ratings
    python benchmarks/scaling.py --only store,serve --plots docs/img

Curves (each point in its own process, its memory sampled every 0.1 s with its children):
  fanout  LLM fan-out through Ray against the simulated endpoint with no server limit:
          calls per second; peak RSS of the driver while rating (and with the check that
          reads the whole store back), of Ray's processes; the store's size
  store   ratings store append (seconds per 10^4 rows) and resume scan, local and S3 (moto)
  bayes   Bayesian fit (interval, binary, ordinal): wall time and memory vs ratings (nutpie's
          chains are threads of the point's process, so its memory is the driver's)
  serve   classifier serving: req/s and p99 vs concurrency, single rows and 256-row batches
  train   training wall time vs rows (WDBC resampled x10, x100), 1 vs 2 Ray workers

Each curve prints its log-log slope: 1.0 means cost proportional to the data, 0 flat. Every
line carries the 1-minute load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
POINT_SCRIPT = HERE / "_scaling_points.py"
CURVES = ("fanout", "store", "bayes", "serve", "train")
SIZES = {
    "fanout": ([1_000, 3_000], [1_000, 10_000, 100_000]),
    "store": ([1_000, 10_000, 100_000], [1_000, 10_000, 100_000]),
    "store-s3": ([1_000, 10_000], [1_000, 10_000, 100_000]),
    "bayes": ([1_000, 10_000], [1_000, 10_000, 100_000, 1_000_000]),
    "train": ([1, 10], [1, 10, 100]),
}
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


def load() -> float:
    return os.getloadavg()[0]


def slope(sizes: list[float], costs: list[float]) -> float:
    """Exponent b of cost ~ size^b, least squares on logs (nan with fewer than two points)."""
    pairs = [
        (math.log(s), math.log(c)) for s, c in zip(sizes, costs, strict=True) if s > 0 and c > 0
    ]
    if len(pairs) < 2:
        return float("nan")
    xs, ys = np.array(pairs).T
    return float(np.polyfit(xs, ys, 1)[0])


class MemorySampler:
    """Peak RSS of a process (the driver) and of all its descendants (Ray, sampler chains)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.driver_mb = 0.0
        self.children_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss_mb(self, process: psutil.Process) -> float:
        try:
            return process.memory_info().rss / 2**20
        except psutil.Error:
            return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                children = self.root.children(recursive=True)
            except psutil.Error:
                break
            self.driver_mb = max(self.driver_mb, self._rss_mb(self.root))
            self.children_mb = max(self.children_mb, sum(self._rss_mb(c) for c in children))
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_point(curve: str, n: int, *options: str, env: dict[str, str] | None = None) -> dict:
    """Run one point in its own process; its result plus the sampled peak memory."""
    command = [sys.executable, str(POINT_SCRIPT), curve, str(n), *options]
    load_before = load()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    sampler = MemorySampler(process.pid)
    out, err = process.communicate()
    sampler.stop()
    line = next((ln for ln in out.splitlines() if ln.startswith("POINT ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"{curve} n={n} failed (exit {process.returncode}):\n{err[-3000:]}")
    result = json.loads(line[len("POINT ") :])
    result.update(
        curve=curve,
        n=n,
        driver_peak_mb=sampler.driver_mb,
        children_peak_mb=sampler.children_mb,
        load=(load_before, load()),
    )
    return result


RECORD: list[Path] = []
"""Where each point is appended as soon as it is measured (nothing lost if a later one fails)."""


def _print(result: dict, *fields: str) -> None:
    for path in RECORD:
        with path.open("a") as out:
            out.write(json.dumps(result) + "\n")
    shown = " | ".join(f"{f} {result[f]:.4g}" for f in fields if f in result)
    loads = result.get("load", (load(), load()))
    print(f"  {result['curve']:8s} n={result['n']:>9,} | {shown} | load {loads[0]:.1f}", flush=True)


# --- the curves --------------------------------------------------------------------------------


def fanout_curve(sizes: list[int]) -> list[dict]:
    from assay.sim import SimConfig, SimModelConfig, start_sim_server

    models = ("sim-gpt", "sim-claude", "sim-llama")
    config = SimConfig(seed=3, models=[SimModelConfig(name=m, latency_s=0.02) for m in models])
    sim = start_sim_server(config=config, in_subprocess=True)
    try:
        results = []
        for n in sizes:
            result = run_point("fanout", n, "--sim-url", sim.base_url)
            _print(
                result, "calls_per_s", "seconds", "fanout_peak_mb", "driver_peak_mb",
                "children_peak_mb",
            )  # fmt: skip
            results.append(result)
        return results
    finally:
        sim.stop()


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 (MinIO stands in this way in the tests) and its env."""
    from minio import Minio
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = dict(
        os.environ,
        MINIO_ENDPOINT=f"{host}:{port}",
        MINIO_ACCESS_KEY="scaling",
        MINIO_SECRET_KEY="scaling-secret",
        MINIO_SECURE="false",
        MINIO_REGION="us-east-1",
    )
    Minio(env["MINIO_ENDPOINT"], "scaling", "scaling-secret", secure=False).make_bucket("ratings")
    try:
        yield env
    finally:
        server.stop()


def store_curve(local_sizes: list[int], s3_sizes: list[int]) -> list[dict]:
    results = []
    for n in local_sizes:
        result = run_point("store", n)
        result["backend"] = "local"
        _print(result, "append_s_per_10k", "resume_s", "driver_peak_mb")
        results.append(result)
    with s3_server() as env:
        for n in s3_sizes:
            result = run_point("store", n, "--location", f"s3://ratings/n{n}", env=env)
            result["backend"] = "s3"
            _print(result, "append_s_per_10k", "resume_s", "driver_peak_mb")
            results.append(result)
    return results


def bayes_curve(sizes: list[int], draws: int) -> list[dict]:
    results = []
    for scale in ("interval", "binary", "ordinal"):
        for n in sizes:
            result = run_point("bayes", n, "--scale", scale, "--draws", str(draws))
            result["scale"] = scale
            _print(result, "ratings", "seconds", "compile_s", "driver_peak_mb")
            results.append(result)
    return results


def serve_curve(seconds: float) -> list[dict]:
    import asyncio

    from _load import closed_loop, tree_cpu_seconds
    from _serve_model import build_model, request_body
    from serve_bench import serve

    results = []
    with tempfile.TemporaryDirectory(prefix="scaling-serve-") as tmp:
        work = Path(tmp)
        model_dir = build_model(work / "model")
        rows = np.random.default_rng(0).normal(10.0, 3.0, size=(256, 30))
        with serve("assay", model_dir, work) as target:
            url = f"{target.url}/v2/models/wdbc-classifier/infer"
            for batch in (1, 256):
                body = request_body(rows[:batch], target.outputs)
                for concurrency in CONCURRENCY:
                    cpu_before = tree_cpu_seconds(target.pid)
                    latencies, errors, elapsed = asyncio.run(
                        closed_loop(url, body, concurrency, seconds, max_requests=10**6)
                    )
                    cpu = tree_cpu_seconds(target.pid) - cpu_before
                    result = {
                        "curve": "serve",
                        "n": concurrency,
                        "batch_rows": batch,
                        "req_per_s": len(latencies) / elapsed,
                        "rows_per_s": len(latencies) * batch / elapsed,
                        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
                        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
                        "errors": errors,
                        "server_cpu_ms": cpu / max(1, len(latencies) + 20) * 1e3,
                        "load": (load(), load()),
                    }
                    _print(result, "batch_rows", "req_per_s", "p99_ms", "server_cpu_ms")
                    results.append(result)
    return results


def train_curve(multiples: list[int]) -> list[dict]:
    results = []
    for n in multiples:
        for workers in (1, 2):
            result = run_point("train", n, "--workers", str(workers))
            result["workers"] = workers
            _print(result, "rows", "workers", "seconds", "cpu_s", "children_peak_mb")
            results.append(result)
    return results


# --- summary -----------------------------------------------------------------------------------


def _series(results: list[dict], **match: Any) -> list[dict]:
    return [r for r in results if all(r.get(k) == v for k, v in match.items())]


def summarise(results: list[dict]) -> list[str]:
    """One line per curve: its slope, computed from the points just measured."""
    lines = []

    def add(label: str, points: list[dict], x: str, y: str) -> None:
        if len(points) >= 2:
            b = slope([p[x] for p in points], [p[y] for p in points])
            lines.append(f"  {label:44s} slope {b:5.2f}  ({y} vs {x})")

    fan = _series(results, curve="fanout")
    add("fan-out wall time", fan, "n", "seconds")
    if all("fanout_peak_mb" in point for point in fan):
        add("fan-out driver peak RSS while rating", fan, "n", "fanout_peak_mb")
    add("fan-out driver peak RSS, with the check's read of the store", fan, "n", "driver_peak_mb")
    add("fan-out Ray processes peak RSS", fan, "n", "children_peak_mb")
    for backend in ("local", "s3"):
        points = _series(results, curve="store", backend=backend)
        add(f"store append ({backend})", points, "n", "append_s")
        add(f"store resume scan ({backend})", points, "n", "resume_s")
    for scale in ("interval", "binary", "ordinal"):
        points = _series(results, curve="bayes", scale=scale)
        add(f"Bayesian fit ({scale}) wall time", points, "ratings", "seconds")
        add(f"Bayesian fit ({scale}) peak RSS", points, "ratings", "driver_peak_mb")
    for batch in (1, 256):
        points = _series(results, curve="serve", batch_rows=batch)
        add(f"serving {batch}-row throughput", points, "n", "rows_per_s")
        add(f"serving {batch}-row p99", points, "n", "p99_ms")
    for workers in (1, 2):
        add(f"training wall time, {workers} worker(s)", _series(results, curve="train",
            workers=workers), "rows", "seconds")  # fmt: skip
    return lines


def plot(results: list[dict], folder: Path) -> list[Path]:
    from _scaling_plots import plot_all

    return plot_all(results, folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes; under 10 minutes")
    parser.add_argument("--only", default=",".join(CURVES), help="curves to run (comma list)")
    parser.add_argument("--out", type=Path, default=Path("build/scaling.jsonl"))
    parser.add_argument("--plots", type=Path, default=Path("build/scaling"))
    parser.add_argument("--replot", action="store_true", help="plot --out's points; measure none")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.replot:
        results = [json.loads(line) for line in args.out.read_text().splitlines() if line]
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("")
        RECORD.append(args.out)
        results = measure(args)
    print("slopes (cost ~ size^slope; 1 = proportional, 0 = flat):")
    print("\n".join(summarise(results)))
    for path in plot(results, args.plots):
        print(f"plot: {path}")
    return 0


def measure(args: argparse.Namespace) -> list[dict]:
    pick = 0 if args.quick else 1
    only = set(args.only.split(","))
    unknown = only - set(CURVES)
    if unknown:
        raise SystemExit(f"unknown curve(s) {sorted(unknown)}; choose from {', '.join(CURVES)}")
    mode = "quick" if args.quick else "full"
    print(f"scaling ({mode}) on {os.cpu_count()} cores, load {load():.1f}, {time.ctime()}")
    results: list[dict] = []
    started = time.perf_counter()
    if "fanout" in only:
        results += fanout_curve(SIZES["fanout"][pick])
    if "store" in only:
        results += store_curve(SIZES["store"][pick], SIZES["store-s3"][pick])
    if "bayes" in only:
        results += bayes_curve(SIZES["bayes"][pick], draws=100 if args.quick else 1000)
    if "serve" in only:
        results += serve_curve(seconds=1.5 if args.quick else 5.0)
    if "train" in only:
        results += train_curve(SIZES["train"][pick])
    print(f"measured in {time.perf_counter() - started:.0f} s")
    return results


if __name__ == "__main__":
    sys.exit(main())
