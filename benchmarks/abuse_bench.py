"""What requests inside the size limits can make the servers spend, against a normal request
measured in the same run: CPU per request (the server process's CPU time), a normal request's
latency while two clients send the worst body in a loop, ``/v2/health/ready`` latency under
attack, and the RSS of the classifier while 150 connections each send 2 MB - 1 byte and hold.

    flock /tmp/assay-heavy.lock .venv/bin/python benchmarks/abuse_bench.py [--source DIR] [--nice N]

``--source``: a checkout whose ``src/`` and ``serving/`` are served (default: this one), e.g. a
checkout of an older commit, to compare. ``--nice -20`` (root only) runs this process, the
servers and the attacking clients at that priority, so that on a machine busy with other jobs
they get the cores much as on a quiet one (the latency targets are about the server's own work);
the figures without it say what a busy machine gives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import psutil
from _serve_model import MODEL_NAME, build_model, request_body
from _servers import free_port, running
from sklearn.datasets import load_breast_cancer

REPO = Path(__file__).resolve().parents[1]
JSON = {"content-type": "application/json"}
SLOW_CONNECTIONS = 150
POD_LIMIT_MIB = 512


def empty_lists(size: int, parameters: bool) -> bytes:
    head = b'{"inputs":[{"name":"input-0","shape":[1,30],"datatype":"FP64",'
    head += b'"parameters":{},' if parameters else b""
    head += b'"data":['
    return head + b"[]," * ((size - len(head) - 8) // 3) + b"[]]}]}"


def zeros(size: int) -> bytes:
    head = b'{"inputs":[{"name":"input-0","shape":[1,30],"datatype":"FP64","data":['
    return head + b"0," * ((size - len(head) - 8) // 2) + b"0]}]}"


def deep(size: int) -> bytes:
    return b'{"inputs":[{"data":' + b"[" * (size - 64) + b"]}]}"


def tiny_tensors(size: int) -> bytes:
    tensor = b'{"name":"t","shape":[1],"datatype":"BYTES","data":["a"]},'
    last = b'{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}'
    return b'{"inputs":[' + tensor * ((size - 128) // len(tensor)) + last + b"]}"


def passages(n: int) -> bytes:
    return passages_of(["A calm day."] * n)


def escaped_passages(rows: int, chars: int, char: str = "\u00e9") -> bytes:
    """``rows`` passages of ``chars`` times ``char``, which JSON spells as ``\\uXXXX`` escapes
    (6 bytes each for \u00e9: 64 x 20,000 fills the 8 MiB limit, but each passage is 40,000 UTF-8
    bytes, over the scorer's 24,000-token cap; 5,996 emoji are 23,984 bytes + 16 of framing,
    exactly the cap, and 12 bytes each in JSON: the largest body a passage cap admits)."""
    return passages_of([char * chars] * rows)


def passages_of(texts: list[str]) -> bytes:
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
    return json.dumps({"inputs": [tensor]}).encode()


def thread_cpu_ms(work: Callable[[], object], times: int = 5) -> float:
    """The most CPU (ms) one call of ``work`` took in this thread, over ``times`` calls."""
    worst = 0.0
    for _ in range(times):
        started = time.thread_time()
        with contextlib.suppress(Exception):  # a refusal is the work measured
            work()
        worst = max(worst, time.thread_time() - started)
    return worst * 1000


def event_loop_blocks() -> None:
    """CPU of the longest synchronous steps a body costs the server's one event loop (in this
    process, the servers' own code): the structure check every JSON body passes, and for the
    scorer's largest legitimate body the parse KServe's route runs. Readiness probes wait at
    most this long behind one such step, whatever the machine's load does to wall time."""
    from dataclasses import replace

    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    from assay.serving.body_budget import JsonBudget

    classifier = JsonBudget.for_tensors(rows=1024, values_per_row=30)
    scorer = replace(
        JsonBudget.for_tensors(rows=64, values_per_row=1, tensors=2, text=True),
        max_string_bytes=24_000,  # the scorer's default --max-passage-tokens
    )
    size = 2 * 1024 * 1024 - 4096
    legit = escaped_passages(64, 5_996, "\U0001f600")
    over_cap = escaped_passages(64, 20_000)
    empty, many, nested = empty_lists(size, False), zeros(size), deep(size)
    tiny = tiny_tensors(8 * 1024 * 1024 - 4096)
    steps = {
        "classifier: check 2 MiB of []": lambda: classifier.check(empty),
        "classifier: check 2 MiB of 0, (1M values)": lambda: classifier.check(many),
        "classifier: check 2 MiB of [": lambda: classifier.check(nested),
        "scorer: check 8 MiB of tiny tensors": lambda: scorer.check(tiny),
        f"scorer: check 64 over-cap passages ({len(over_cap) / 2**20:.1f} MiB)": lambda: (
            scorer.check(over_cap)
        ),
        f"scorer: check the largest legitimate body ({len(legit) / 2**20:.1f} MiB)": lambda: (
            scorer.check(legit)
        ),
        "scorer: parse it into InferenceRequest (pydantic)": lambda: (
            InferenceRequest.model_validate_json(legit)
        ),
    }
    print("event-loop steps (CPU of the longest call, in this process):")
    for name, step in steps.items():
        print(f"  {name:58s} {thread_cpu_ms(step):7.1f} ms")


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def cpu_per_request(pid: int, url: str, body: bytes, times: int) -> tuple[float, int]:
    """Server CPU ms per request and the last status."""
    status = 0
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=JSON) as response:
            await response.read()  # warm the connection and the route
        before = cpu_s(pid)
        for _ in range(times):
            async with session.post(url, data=body, headers=JSON) as response:
                await response.read()
                status = response.status
    return (cpu_s(pid) - before) / times * 1000, status


def attack_loop(url: str, body: bytes, seconds: float) -> None:
    """One attacking client, in its own process: posts ``body`` in a loop for ``seconds``."""

    async def loop() -> None:
        stop = time.perf_counter() + seconds
        async with aiohttp.ClientSession() as session:
            while time.perf_counter() < stop:
                async with session.post(url, data=body, headers=JSON) as response:
                    await response.read()

    asyncio.run(loop())


async def latencies_under(
    probe: Callable[[aiohttp.ClientSession], Awaitable[None]],
    url: str,
    attack: bytes | None,
    seconds: float,
) -> list[float]:
    """Latencies (ms) of ``probe`` run back to back while two client processes post ``attack``
    in a loop (their own processes: sending 2-8 MiB would stall this loop's measurements)."""
    attackers = []
    if attack is not None:
        context = multiprocessing.get_context("spawn")
        attackers = [
            context.Process(target=attack_loop, args=(url, attack, seconds + 1)) for _ in range(2)
        ]
        for process in attackers:
            process.start()
        await asyncio.sleep(1.0)  # the attackers' interpreters start and begin sending
    seen: list[float] = []
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        await probe(session)
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            await probe(session)
            seen.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.01)
    for process in attackers:
        process.join()
    return seen


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else float("nan")


async def slow_bodies(port: int, path: str, pid: int, count: int) -> dict[str, float]:
    """``count`` connections each send 2 MB - 1 byte of a 2 MB body and hold."""
    size = 2 * 1000 * 1000
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    rss_before = psutil.Process(pid).memory_info().rss
    peak = rss_before
    streams = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b" " * (size - 1))
        streams.append((reader, writer))
        peak = max(peak, psutil.Process(pid).memory_info().rss)
    for _, writer in streams:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), 5)
    for _ in range(20):  # 4 s holding
        peak = max(peak, psutil.Process(pid).memory_info().rss)
        await asyncio.sleep(0.2)
    answered = 0
    for reader, _ in streams:
        try:
            line = await asyncio.wait_for(reader.readline(), 0.05)
            answered += line.startswith(b"HTTP/1.1 503")
        except (TimeoutError, ConnectionError):
            pass
    async with aiohttp.ClientSession() as session:
        sent = time.perf_counter()
        async with session.get(f"http://127.0.0.1:{port}/v2/health/ready") as response:
            ready = response.status
        ready_ms = (time.perf_counter() - sent) * 1000
    for _, writer in streams:
        writer.close()
    return {
        "rss_before_mib": rss_before / 2**20,
        "rss_peak_mib": peak / 2**20,
        "answered_503": answered,
        "ready_status": ready,
        "ready_ms": ready_ms,
    }


def serve_command(
    source: Path, module: str, port: int, *args: str
) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": f"{source / 'src'}:{source}", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", module, f"--http_port={port}", f"--grpc_port={free_port()}"]
    return [*command, *args], env


async def classifier_figures(pid: int, port: int) -> None:
    url = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer"
    rows = load_breast_cancer().data
    normal = request_body(rows[:1], None)
    base, status = await cpu_per_request(pid, url, normal, 300)
    print(f"classifier: normal 1-row request {base:.2f} ms CPU (status {status})")
    size = 2 * 1024 * 1024 - 4096
    attacks = {
        "1,024-row batch (legitimate, largest)": request_body(rows[np.arange(1024) % 569], None),
        "2 MiB of [] (lean route)": empty_lists(size, False),
        '2 MiB of [] + "parameters": {} (KServe route)': empty_lists(size, True),
        "2 MiB of 0, (1M values)": zeros(size),
        "2 MiB of [ (nesting)": deep(size),
    }
    worst, worst_cpu = b"", 0.0
    for name, body in attacks.items():
        cost, status = await cpu_per_request(pid, url, body, 10)
        print(f"  {name:48s} {cost:8.2f} ms CPU  {cost / base:7.1f}x  (status {status})")
        if not name.endswith("(legitimate, largest)") and cost > worst_cpu:
            worst, worst_cpu = body, cost

    async def one_row(session: aiohttp.ClientSession) -> None:
        async with session.post(url, data=normal, headers=JSON) as response:
            await response.read()

    quiet = await latencies_under(one_row, url, None, 5)
    loud = await latencies_under(one_row, url, worst, 10)
    print(
        f"  normal request p50/p99: {statistics.median(quiet):.1f}/{p99(quiet):.1f} ms alone, "
        f"{statistics.median(loud):.1f}/{p99(loud):.1f} ms while 2 clients send the worst body "
        f"in a loop ({len(loud)} requests)"
    )
    print(f"  /v2/health/ready under 2 worst-body loops: {await readiness_under(port, url, worst)}")


async def scorer_figures(pid: int, port: int) -> None:
    url = f"http://127.0.0.1:{port}/v2/models/bias-scorer/infer"
    base, status = await cpu_per_request(pid, url, passages(1), 40)
    print(f"bias scorer: normal 1-passage request {base:.2f} ms CPU (status {status})")
    attack = tiny_tensors(8 * 1024 * 1024 - 4096)
    cost, status = await cpu_per_request(pid, url, attack, 5)
    print(f"  8 MiB of tiny tensors  {cost:8.2f} ms CPU  {cost / base:7.1f}x  (status {status})")
    print(f"  /v2/health/ready under 2 attack loops: {await readiness_under(port, url, attack)}")
    bodies = {
        "64 passages of 20,000 \u00e9 (7.3 MiB, over the token cap)": escaped_passages(64, 20_000),
        "64 passages of 5,996 emoji (4.6 MiB, the largest legitimate)": escaped_passages(
            64, 5_996, "\U0001f600"
        ),
    }
    for name, body in bodies.items():
        cost, status = await cpu_per_request(pid, url, body, 5)
        print(f"  {name:58s} {cost:8.2f} ms CPU  {cost / base:7.1f}x  (status {status})")
        print(f"  /v2/health/ready under 2 such loops: {await readiness_under(port, url, body)}")


async def readiness_under(port: int, url: str, attack: bytes) -> str:
    """p99 and max latency of ``/v2/health/ready`` while two clients post ``attack`` to ``url``."""

    async def ready(session: aiohttp.ClientSession) -> None:
        async with session.get(f"http://127.0.0.1:{port}/v2/health/ready") as response:
            await response.read()

    probes = await latencies_under(ready, url, attack, 10)
    return f"p99 {p99(probes):.1f} ms, max {max(probes):.1f} ms ({len(probes)} probes)"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}, priority {os.nice(0)}"


async def main(source: Path) -> None:
    print(f"serving code from {source}; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"start: {load()}")
    event_loop_blocks()
    with tempfile.TemporaryDirectory() as scratch:
        folder = build_model(Path(scratch) / "model")
        port = free_port()
        command, env = serve_command(
            source,
            "assay_serving.classifier",
            port,
            f"--model_uri={folder}",
            "--max_batch_rows=1024",
            "--allow-unsigned-models",  # a folder trained here, never registered
        )
        ready = f"http://127.0.0.1:{port}/v2/health/ready"
        with running(command, ready, Path(scratch) / "classifier.log", source, env) as pid:
            await classifier_figures(pid, port)
            slow = await slow_bodies(port, f"/v2/models/{MODEL_NAME}/infer", pid, SLOW_CONNECTIONS)
            print(
                f"classifier with {SLOW_CONNECTIONS} connections each sending 2 MB - 1 byte: RSS "
                f"{slow['rss_before_mib']:.0f} -> {slow['rss_peak_mib']:.0f} MiB (pod limit "
                f"{POD_LIMIT_MIB} Mi); {slow['answered_503']:.0f} answered 503; "
                f"/v2/health/ready {slow['ready_status']:.0f} in {slow['ready_ms']:.1f} ms"
            )
        port = free_port()
        command, env = serve_command(
            source, "assay_serving.bias_scorer", port, "--sim", "--allow-anonymous"
        )
        ready = f"http://127.0.0.1:{port}/v2/health/ready"
        with running(command, ready, Path(scratch) / "scorer.log", source, env) as pid:
            await scorer_figures(pid, port)
    print(f"end: {load()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO)
    parser.add_argument("--nice", type=int, default=0, help="change of priority (root: -20)")
    arguments = parser.parse_args()
    if arguments.nice:
        os.nice(arguments.nice)  # inherited by the servers and the attacking clients
    asyncio.run(main(arguments.source.resolve()))
