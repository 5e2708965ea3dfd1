"""Helpers for the serving tests: the contract-shaped model and a real server process.

Kept out of conftest.py so test modules can import them by a unique module name (two
``conftest`` modules in one run would shadow each other).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import joblib
import psutil
from _signing import write_public_key
from _wdbc_model import MODEL_NAME, SELECTED, sign_folder, wdbc, write_model_folder

__all__ = ["MODEL_NAME", "SELECTED", "sign_folder", "wdbc", "write_model_folder"]

REPO = Path(__file__).resolve().parents[3]
MAX_REQUEST_BYTES = 65_536
"""The request-size limit of the hardened servers (small, so the size attacks stay cheap)."""


@cache
def trusted_keys_dir() -> Path:
    """A folder holding the tests' public key, as the ConfigMap of trusted keys would."""
    folder = Path(tempfile.mkdtemp(prefix="assay-trusted-keys-"))
    write_public_key(folder)
    return folder


@dataclass(frozen=True)
class ModelFixture:
    registry_root: Path
    v1_dir: Path
    v2_dir: Path

    @property
    def production_uri(self) -> str:
        return f"file://{self.registry_root}/{MODEL_NAME}/production"

    def pipeline(self, version: str = "v1"):
        return joblib.load(self.registry_root / MODEL_NAME / version / "model.joblib")

    def card(self, version: str = "v1") -> dict:
        return json.loads(
            (self.registry_root / MODEL_NAME / version / "model-card.json").read_text()
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen
    http_port: int
    grpc_port: int
    log_path: Path
    model_uri: str = ""
    admin_token: str = ""

    @property
    def admin_headers(self) -> dict[str, str]:
        """The Bearer header the repository endpoints need (the server's --admin-token-file)."""
        return {"authorization": f"Bearer {self.admin_token}"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def launch(
    entry: list[str],
    model_flag: str,
    model_uri: str,
    log_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start a server process (not yet ready) on free ports; ``env`` adds variables."""
    http_port, grpc_port = free_port(), free_port()
    if entry[0] == "assay":
        ports = [f"--http-port={http_port}", f"--grpc-port={grpc_port}", "--max-batch-rows=512"]
        command = [str(Path(sys.executable).parent / "assay"), *entry[1:], *ports]
    else:
        ports = [f"--http_port={http_port}", f"--grpc_port={grpc_port}", "--max_batch_rows=512"]
        command = [sys.executable, *entry, *ports]
    command += [f"{model_flag}={model_uri}", *extra]
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ASSAY_TRUSTED_KEYS": str(trusted_keys_dir()),
        **(env or {}),
    }
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return RunningServer(process, http_port, grpc_port, log_path, model_uri)


WALL_FACTOR = 5
"""On a loaded machine a server's start takes many times its CPU time in wall time."""


def wait_ready(server: RunningServer, timeout_s: float = 120) -> RunningServer:
    """Wait until ``server`` answers ready. It gives up once the server's process has used
    ``timeout_s`` seconds of CPU (a start takes a few), or ``WALL_FACTOR`` times that in wall
    time: a start on a busy machine is slow, not broken."""
    deadline = time.monotonic() + WALL_FACTOR * timeout_s
    while time.monotonic() < deadline and _cpu_s(server) < timeout_s:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.logs()}")
        if answers_ready(server):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(
        f"server did not become ready ({_cpu_s(server):.0f} s of CPU):\n{server.logs()}"
    )


def answers_ready(server: RunningServer) -> bool:
    try:
        return httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _cpu_s(server: RunningServer) -> float:
    """CPU seconds of the server's process and its children (0 once it has exited)."""
    try:
        process = psutil.Process(server.process.pid)
        times = [process.cpu_times()] + [
            child.cpu_times() for child in process.children(recursive=True)
        ]
    except psutil.Error:
        return 0.0
    return sum(t.user + t.system for t in times)


def write_admin_token(folder: Path) -> tuple[str, Path]:
    """A random admin token and the file holding it, readable by its owner only."""
    import secrets

    token = secrets.token_urlsafe(24)
    path = folder / "admin-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token, path


MODULE_ENTRY = ["-m", "assay_serving.classifier"]
CLI_ENTRY = ["assay", "serve", "classifier"]
