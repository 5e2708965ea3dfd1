"""Serving benchmark: assay's classifier server vs MLServer (sklearn) vs a plain KServe model.

All of them serve the same ``model.joblib`` (the contract's StandardScaler -> column selection ->
AdaBoost pipeline, trained here on scikit-learn's WDBC copy, or ``--model DIR``) on 127.0.0.1,
one server at a time. ``assay-kserve-route`` is assay's server with ``--no-fast-rest``: every
request through KServe's FastAPI route, as before the lean route of issue 13 (the "before" of
that change, measured in the same run). A closed-loop load generator (aiohttp on a uvloop event
loop, pre-encoded v2 JSON bodies, the same for every server; it shares the machine's cores with
the server, so its own cost per request is kept small) keeps ``concurrency`` requests in flight
for ``--seconds`` (at most ``--max-requests``) per scenario: concurrency 1 and 8, single-row and
256-row requests. It prints throughput, p50/p99 latency, the server's CPU time per request (its
whole process tree; robust to other load on the machine), the ratios assay/reference, and the
issue 13 targets (c=8 single-row p99 < 25 ms; throughput >= 6x MLServer's) with PASS/FAIL, all
from this one run.

MLServer 1.7.1 conflicts with assay's lock, so it lives in its own virtualenv under
``~/.cache/assay/bench`` (created on first use with ``python -m venv`` + pip, with the same
scikit-learn version as ours).

    .venv/bin/python benchmarks/serve_bench.py [--seconds 5]
        [--only assay,assay-kserve-route,mlserver,kserve]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import joblib
import numpy as np
import uvloop
from _load import Result, closed_loop, tree_cpu_seconds
from _serve_model import MODEL_NAME, build_model, request_body
from _serve_report import SCENARIOS, report
from _servers import PLAIN_KSERVE_SERVER, Target, free_port, mlserver_python, running
from sklearn.datasets import load_breast_cancer

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def serve(kind: str, model_dir: Path, work: Path) -> Iterator[Target]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ready = f"{url}/v2/models/{MODEL_NAME}/ready"
    log = work / f"{kind}.log"
    if kind in ("assay", "assay-kserve-route"):
        route = ["--no-fast-rest"] if kind == "assay-kserve-route" else []
        command = [
            sys.executable,
            "-m",
            "assay_serving.classifier",
            f"--model_uri={model_dir}",
            f"--http_port={port}",
            f"--grpc_port={free_port()}",
            f"--model_name={MODEL_NAME}",
            "--allow-unsigned-models",  # a folder trained here, never registered
            *route,
        ]
        with running(command, ready, log, REPO) as pid:
            yield Target(kind, url, ["probability"], pid)
    elif kind == "kserve":
        script = work / "plain_kserve_server.py"
        script.write_text(PLAIN_KSERVE_SERVER)
        command = [
            sys.executable,
            str(script),
            f"--model_path={model_dir / 'model.joblib'}",
            f"--model_name={MODEL_NAME}",
            f"--http_port={port}",
            f"--grpc_port={free_port()}",
        ]
        with running(command, ready, log, work) as pid:
            yield Target("kserve-plain", url, None, pid)
    elif kind == "mlserver":
        python = mlserver_python()
        folder = work / "mlserver"
        folder.mkdir(exist_ok=True)
        settings = {
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "host": "127.0.0.1",
        }
        (folder / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": MODEL_NAME,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(model_dir / "model.joblib"), "version": "v1"},
        }
        (folder / "model-settings.json").write_text(json.dumps(model_settings))
        command = [str(python.parent / "mlserver"), "start", str(folder)]
        with running(command, ready, log, folder) as pid:
            yield Target("mlserver", url, ["predict_proba"], pid)
    else:
        raise ValueError(kind)


def check_answer(target: Target, body: bytes, expected: np.ndarray) -> None:
    response = httpx.post(
        f"{target.url}/v2/models/{MODEL_NAME}/infer",
        content=body,
        headers={"content-type": "application/json"},
    )
    response.raise_for_status()
    output = response.json()["outputs"][0]
    values = np.asarray(output["data"], dtype=np.float64).reshape(len(expected), -1)[:, -1]
    diff = float(np.max(np.abs(values - expected)))
    if diff > 1e-5:
        raise SystemExit(f"{target.name} returned probabilities off by {diff}")


def bench_server(kind: str, model_dir: Path, work: Path, args: argparse.Namespace) -> list[Result]:
    X = load_breast_cancer().data
    pipeline = joblib.load(model_dir / "model.joblib")
    results = []
    with serve(kind, model_dir, work) as target:
        url = f"{target.url}/v2/models/{MODEL_NAME}/infer"
        check_answer(
            target, request_body(X[:8], target.outputs), pipeline.predict_proba(X[:8])[:, 1]
        )
        for concurrency, rows in SCENARIOS:
            body = request_body(X[:rows], target.outputs)
            cpu_before = tree_cpu_seconds(target.pid)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                latencies, errors, elapsed = runner.run(
                    closed_loop(url, body, concurrency, args.seconds, args.max_requests)
                )
            cpu = (tree_cpu_seconds(target.pid) - cpu_before) * 1000 / (len(latencies) + 20)
            p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if latencies else (np.nan,) * 2
            result = Result(
                target.name, concurrency, rows, len(latencies), errors, elapsed, p50, p99, cpu
            )
            print(
                f"  {result.server:13s} c={concurrency} rows={rows:3d}: "
                f"{result.throughput:8.1f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                f"  cpu {cpu:5.2f} ms/req  ({result.requests} ok, {errors} errors)",
                flush=True,
            )
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per scenario")
    parser.add_argument("--max-requests", type=int, default=20000, help="cap per scenario")
    parser.add_argument("--model", type=Path, help="a version folder; default: train one here")
    parser.add_argument(
        "--only", default="assay,assay-kserve-route,mlserver,kserve", help="servers to run"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assay-serve-bench-") as tmp:
        work = Path(tmp)
        model_dir = args.model or build_model(work / "model")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"model: {model_dir}; {args.seconds:g} s per scenario; cpus: {os.cpu_count()}")
        print(f"load average before: {load} (other work on the machine skews latency, not cpu/req)")
        results: list[Result] = []
        gc.collect()
        gc.freeze()  # keep full collections of this process's heap out of measured latencies
        for kind in args.only.split(","):
            print(f"{kind}:", flush=True)
            results += bench_server(kind.strip(), model_dir, work, args)
        report(results)
        print("load average after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
