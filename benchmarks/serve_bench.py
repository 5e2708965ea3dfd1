"""Serving benchmark: assay's classifier server vs MLServer (sklearn) vs a plain KServe model.

All three serve the same ``model.joblib`` (the contract's StandardScaler -> column selection ->
AdaBoost pipeline, trained here on scikit-learn's WDBC copy, or ``--model DIR``) on 127.0.0.1,
one server at a time. A closed-loop load generator (aiohttp, pre-encoded v2 JSON bodies) keeps
``concurrency`` requests in flight for ``--seconds`` (at most ``--max-requests``) per scenario:
concurrency 1 and 8, single-row and 256-row requests. It prints throughput, p50/p99 latency, the
server's CPU time per request (its whole process tree; robust to other load on the machine) and
the ratios assay/reference, all from this one run.

MLServer 1.7.1 conflicts with assay's lock, so it lives in its own virtualenv under
``~/.cache/assay/bench`` (created on first use with ``python -m venv`` + pip, with the same
scikit-learn version as ours).

    .venv/bin/python benchmarks/serve_bench.py [--seconds 5] [--only assay,mlserver,kserve]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MLSERVER_VERSION = "1.7.1"
MODEL_NAME = "wdbc-classifier"
SCENARIOS = [(1, 1), (8, 1), (1, 256), (8, 256)]  # (concurrency, rows per request)

PLAIN_KSERVE_SERVER = textwrap.dedent(
    '''
    """A bare KServe sklearn-style server: load() then predict() calling predict_proba."""
    import argparse, joblib, kserve
    from kserve import InferRequest, InferResponse, InferOutput
    class SKLearnModel(kserve.Model):
        def __init__(self, name, path):
            super().__init__(name); self.path = path; self.load()
        def load(self):
            self.model = joblib.load(self.path); self.ready = True; return True
        def predict(self, payload, headers=None):
            proba = self.model.predict_proba(payload.inputs[0].as_numpy())[:, 1]
            out = InferOutput(name="probability", shape=[len(proba)], datatype="FP64")
            out.set_data_from_numpy(proba, binary_data=False)
            return InferResponse(response_id=payload.id or "", model_name=self.name,
                                 infer_outputs=[out])
    if __name__ == "__main__":
        parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
        parser.add_argument("--model_path")
        args, _ = parser.parse_known_args()
        kserve.ModelServer(enable_latency_logging=False).start(
            [SKLearnModel(args.model_name, args.model_path)])
    '''
)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def build_model(folder: Path) -> Path:
    """The contract's exported pipeline + card, trained on WDBC (malignant = 1)."""
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    X, y = data.data, 1 - data.target
    selected = list(range(0, 30, 2))
    pipeline = Pipeline(
        [
            ("scaler", StandardScaler()),
            ("select", ColumnTransformer([("selected", "passthrough", selected)])),
            ("classifier", AdaBoostClassifier(n_estimators=50, random_state=0)),
        ]
    ).fit(X, y)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    names = [str(n) for n in data.feature_names]
    card = {
        "model_name": MODEL_NAME,
        "estimator": "adaboost",
        "feature_names": names,
        "selected_features": [names[i] for i in selected],
        "threshold": 0.3,
        "positive_class": "malignant",
        "positive_label": 1,
        "version": "v1",
    }
    (folder / "model-card.json").write_text(json.dumps(card))
    return folder


def request_body(rows: np.ndarray, outputs: list[str] | None) -> bytes:
    body: dict = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return json.dumps(body).encode()


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    outputs: list[str] | None  # requested outputs: ask every server for probabilities
    pid: int


def mlserver_python() -> Path:
    """MLServer's own virtualenv (created once; it conflicts with assay's lock)."""
    import sklearn

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assay" / "bench"
    venv = cache / f"mlserver-{MLSERVER_VERSION}"
    python = venv / "bin" / "python"
    # uvloop >= 0.22 breaks MLServer 1.7's inference-pool workers (no implicit event loop)
    check = "import mlserver_sklearn, sklearn, uvloop; assert uvloop.__version__ < '0.22'"
    probe = [str(python), "-c", f"{check}; print(sklearn.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == sklearn.__version__:
            return python
    print(f"installing MLServer {MLSERVER_VERSION} into {venv} (once) ...", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"mlserver=={MLSERVER_VERSION}",
            f"mlserver-sklearn=={MLSERVER_VERSION}",
            f"scikit-learn=={sklearn.__version__}",
            "uvloop<0.22",
        ],
        check=True,
    )
    return python


@contextmanager
def running(command: list[str], ready_url: str, log: Path, cwd: Path) -> Iterator[int]:
    import httpx

    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{command[:3]} not ready after 180 s:\n{log.read_text()[-3000:]}")
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(kind: str, model_dir: Path, work: Path) -> Iterator[Target]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ready = f"{url}/v2/models/{MODEL_NAME}/ready"
    log = work / f"{kind}.log"
    if kind == "assay":
        command = [
            sys.executable,
            "-m",
            "serving.classifier",
            f"--model_uri={model_dir}",
            f"--http_port={port}",
            f"--grpc_port={free_port()}",
            f"--model_name={MODEL_NAME}",
        ]
        with running(command, ready, log, REPO) as pid:
            yield Target("assay", url, ["probability"], pid)
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


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    server: str
    concurrency: int
    rows: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # server process tree CPU time per request

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


async def closed_loop(
    url: str, body: bytes, concurrency: int, seconds: float, max_requests: int
) -> tuple[list[float], int, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(20):  # warm-up: connections, caches, the first model calls
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) + errors < max_requests:
                sent = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def tree_cpu_seconds(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def check_answer(target: Target, body: bytes, expected: np.ndarray) -> None:
    import httpx

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
    import joblib
    from sklearn.datasets import load_breast_cancer

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
            latencies, errors, elapsed = asyncio.run(
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


def report(results: list[Result]) -> None:
    by_key = {(r.server, r.concurrency, r.rows): r for r in results}
    print("\nserver         conc  rows    req/s   rows/s   p50 ms   p99 ms  cpu ms/req  errors")
    for r in results:
        print(
            f"{r.server:13s} {r.concurrency:5d} {r.rows:5d} {r.throughput:8.1f} "
            f"{r.throughput * r.rows:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_ms:11.2f}"
            f" {r.errors:7d}"
        )
    for reference in ("mlserver", "kserve-plain"):
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
    checks = [
        (f"c=8 single-row throughput >= 3x MLServer: {ratio:.2f}x", ratio >= 3),
        (
            f"c=8 single-row p99 below MLServer's: {ours8.p99_ms:.2f} vs {ml8.p99_ms:.2f} ms",
            ours8.p99_ms < ml8.p99_ms,
        ),
        (
            f"c=1 single-row p50 <= MLServer's: {ours1.p50_ms:.2f} vs {ml1.p50_ms:.2f} ms",
            ours1.p50_ms <= ml1.p50_ms,
        ),
        (f"c=8 single-row p99 < 25 ms: {ours8.p99_ms:.2f} ms", ours8.p99_ms < 25),
    ]
    print("\ntargets (issue 3):")
    for text, met in checks:
        print(f"  {text}  {'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per scenario")
    parser.add_argument("--max-requests", type=int, default=20000, help="cap per scenario")
    parser.add_argument("--model", type=Path, help="a version folder; default: train one here")
    parser.add_argument("--only", default="assay,mlserver,kserve", help="servers to run")
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
