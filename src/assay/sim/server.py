"""Run the simulated endpoint: in a background thread (tests), a subprocess, or the foreground."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from assay.errors import AssayError
from assay.sim.config import SimConfig

HOST = "127.0.0.1"
READY_LINE = "assay-sim listening on "


def bind_socket(port: int, host: str = HOST) -> socket.socket:
    """A listening socket on ``host`` (127.0.0.1 unless told; port 0 picks a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AssayError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(config: SimConfig, clock: Callable[[], float] | None = None) -> Any:
    """A uvicorn server for the simulator app (not started); ``clock`` drives the rpm windows."""
    import uvicorn

    from assay.sim.app import SimEndpoint

    uv_config = uvicorn.Config(
        SimEndpoint(config, clock or time.monotonic).app(),
        log_config=None,  # leave the host process's logging configuration alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        backlog=2048,
    )
    return uvicorn.Server(uv_config)


class SimServer:
    """Handle of a running simulated endpoint. ``base_url`` is the server root.

    SDK base URLs: OpenAI ``<root>/v1``, Anthropic ``<root>``, Together ``<root>``
    (see ``base_url_for``).
    """

    def __init__(self, base_url: str, stopper: Any) -> None:
        self.base_url = base_url
        self._stopper = stopper
        self._http = httpx.Client(base_url=base_url, timeout=10.0)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def base_url_for(self, kind: str) -> str:
        """The ``base_url`` to give the SDK of a provider kind."""
        return self.base_url + "/v1" if kind.startswith("openai") else self.base_url

    def stats(self) -> dict[str, Any]:
        """Per-model counts (received, admitted, answered, violations, statuses, faults,
        peak_window_requests) and a per-second timeline, as served at /sim/stats."""
        response = self._http.get("/sim/stats")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def reset_stats(self) -> None:
        self._http.post("/sim/reset").raise_for_status()

    def stop(self) -> None:
        self._http.close()
        self._stopper()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_thread(
    sock: socket.socket, config: SimConfig, clock: Callable[[], float] | None
) -> SimServer:
    server = build_server(config, clock)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="assay-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssayError("The simulated LLM endpoint did not start.")
        time.sleep(0.005)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return SimServer(f"http://{HOST}:{sock.getsockname()[1]}", stop)


def _start_subprocess(port: int, config: SimConfig) -> SimServer:
    folder = tempfile.mkdtemp(prefix="assay-sim-")
    config_path = Path(folder) / "sim.yaml"
    data = config.model_dump(mode="json")
    if config.api_key is not None:
        data["api_key"] = config.api_key.get_secret_value()
    config_path.write_text(yaml.safe_dump(data))
    os.chmod(config_path, 0o600)
    process = subprocess.Popen(
        [sys.executable, "-m", "assay.sim", "--port", str(port), "--config", str(config_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith(READY_LINE):
        process.kill()
        raise AssayError("The simulated LLM endpoint subprocess did not start.")

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        config_path.unlink(missing_ok=True)
        os.rmdir(folder)

    return SimServer(line[len(READY_LINE) :].split()[0], stop)


def start_sim_server(
    *,
    port: int = 0,
    config: SimConfig | None = None,
    in_subprocess: bool = False,
    clock: Callable[[], float] | None = None,
) -> SimServer:
    """Start the simulated endpoint on 127.0.0.1 and return its handle once it accepts requests.

    By default it runs on a background thread of this process (starts in well under a second);
    ``in_subprocess=True`` runs it in its own Python process, so heavy load generators in this
    process do not compete with it for the GIL. ``clock`` (thread mode only) replaces
    ``time.monotonic`` for the rolling rpm windows and the stats timeline, e.g. a fake clock.
    """
    config = config or SimConfig()
    if in_subprocess:
        if clock is not None:
            raise AssayError("A custom clock needs the in-process (thread) simulator.")
        return _start_subprocess(port, config)
    return _start_thread(bind_socket(port), config, clock)


def serve_forever(port: int, config: SimConfig, host: str = HOST) -> None:
    """Serve in the foreground until interrupted; prints the ready line with the URL first."""
    sock = bind_socket(port, host)
    server = build_server(config)
    print(f"{READY_LINE}http://{host}:{sock.getsockname()[1]}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
