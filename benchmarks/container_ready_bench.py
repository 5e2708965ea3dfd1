"""Readiness of the classifier-serving image: `podman run` of the rendered manifest's server ->
the first 200 on its readiness probe's path (issue 20's target: ready <= 5 s after start).

The pod is the dev overlay's wdbc-classifier predictor, built from the rendered manifests by the
container tests' harness (tests/_manifest_container.py: the ServingRuntime's image, command,
args, env, securityContext -> --read-only and --user, emptyDir -> tmpfs, probes), with a
version folder registered by assay's registry bound at /mnt/models. Each run starts a fresh
pod, polls the readiness path every 50 ms, and records:

- ``run->ready``: from the `podman run` of the serving container to the first 200 (the target's
  measure; it includes podman's own start-up of the container);
- ``start->ready``: from the container process's start (podman's ``State.StartedAt``);
- ``cpu``: CPU seconds the server process used until it was ready (``/proc/<pid>/stat``, with
  its waited-for children): what the start costs, whatever else the machine is doing.

Wall times on a shared machine grow with its load; the load average is printed with them.
Needs podman and ``make image``.

    .venv/bin/python benchmarks/container_ready_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import _manifest_container as harness  # noqa: E402
from _kustomize import render  # noqa: E402
from _manifest_container import PodOptions, run_predictor  # noqa: E402
from _manifest_servers import CLASSIFIER, registered_version  # noqa: E402

POLL_S = 0.05
SERVING = "kserve-container"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def started_at(pod: harness.ManifestPod) -> float:
    text = pod.inspect('{{.State.StartedAt.Format "2006-01-02T15:04:05.000000Z07:00"}}')
    return datetime.fromisoformat(text).timestamp()


def one_run(objs: list, model_dir: Path, workdir: Path, timeout_s: float = 180) -> dict:
    run_called: dict[str, float] = {}
    start_container = harness._start_container

    def timed_start(objs, pod_name, container, mounts, opts):
        if container["name"] == SERVING:
            run_called["t"] = time.time()
        return start_container(objs, pod_name, container, mounts, opts)

    harness._start_container = timed_start
    try:
        with run_predictor(objs, CLASSIFIER, workdir, PodOptions(model_dir=model_dir)) as pod:
            path, port = pod.probe("readinessProbe")
            url = f"http://127.0.0.1:{pod.port(port)}{path}"
            pid = int(pod.inspect("{{.State.Pid}}"))
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        ready = time.time()
                        cpu = cpu_seconds(pid)
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(POLL_S)
            else:
                raise RuntimeError(f"not ready in {timeout_s} s: {pod.logs()}")
            return {
                "run_to_ready": ready - run_called["t"],
                "start_to_ready": ready - started_at(pod),
                "cpu": cpu,
            }
    finally:
        harness._start_container = start_container


def summary(name: str, values: list[float]) -> str:
    shown = ", ".join(f"{v:.2f}" for v in values)
    median = statistics.median(values)
    return f"{name:>15}: median {median:.2f} s, max {max(values):.2f} s ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    harness.require_podman = lambda: None  # a missing engine fails loudly below instead
    objs = render("dev")
    with tempfile.TemporaryDirectory(prefix="assay-ready-bench-") as tmp:
        workdir = Path(tmp)
        model_dir = registered_version(workdir / "model", objs)
        results = []
        for index in range(args.runs):
            load = os.getloadavg()[0]
            run_dir = workdir / f"run-{index}"
            run_dir.mkdir()
            result = one_run(objs, model_dir, run_dir)
            results.append(result)
            print(
                f"run {index + 1}: run->ready {result['run_to_ready']:.2f} s, start->ready "
                f"{result['start_to_ready']:.2f} s, server CPU {result['cpu']:.2f} s "
                f"(load average {load:.1f})",
                flush=True,
            )
    print(f"image {harness.image_for(_serving_image(objs))}, {args.runs} runs:")
    for key, name in [("run_to_ready", "run->ready"), ("start_to_ready", "start->ready")]:
        print(summary(name, [r[key] for r in results]))
    print(summary("server CPU", [r["cpu"] for r in results]))
    median = statistics.median(r["run_to_ready"] for r in results)
    print(f"target ready <= 5 s after start: {'PASS' if median <= 5 else 'FAIL'} (median)")


def _serving_image(objs: list) -> str:
    pod = harness.predictor_pod(objs, CLASSIFIER)
    return str(next(c for c in pod["containers"] if c["name"] == SERVING)["image"])


if __name__ == "__main__":
    main()
