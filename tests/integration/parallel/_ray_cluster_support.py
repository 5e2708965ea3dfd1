"""A two-node Ray cluster on 127.0.0.1 started with the `ray` CLI, as on real machines.

`ray start --head`, then `ray start --address` for a second node on the same host: each node
gets its own ports and its own temporary folder. Both `ray start` commands run in one new
process group (their daemons inherit it and Ray does not move them out), so the teardown ends
exactly this cluster by signalling that group, never `ray stop`, which would end every Ray
process on the host (other test sessions' included).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# The daemons (GCS, raylets, agents) report readiness to `ray start`; on a busy 2-core host a
# node takes 10-30 s.
START_TIMEOUT_S = 120
# Token authentication, as a cluster that is not on loopback should run: every node and driver
# gets RAY_AUTH_MODE=token and this cluster's own random token in RAY_AUTH_TOKEN (nothing read
# from or written to ~/.ray). On KubeRay the token reaches the pods through a Secret.
AUTH_MODE = "token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LoopbackCluster:
    address: str  # host:port of the head's GCS, the value RAY_ADDRESS takes
    token: str
    pgid: int
    temp_dirs: tuple[Path, ...]

    def join_env(self) -> dict[str, str]:
        """What a driver process needs to join: RAY_ADDRESS and the cluster's auth mode."""
        return {"RAY_ADDRESS": self.address, **_auth_env(self.token)}


def _node_ports() -> list[str]:
    """Ports one node binds, each free now; worker ports left to the OS (0)."""
    names = (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    return [arg for name in names for arg in (name, str(free_port()))]


def _ray_start(args: list[str], group: list[int], env: dict[str, str], log: Path) -> None:
    """Run one `ray start` (it returns once its daemons are up) in the cluster's process group:
    a new one, recorded in ``group``, for the first call; that one for later calls."""
    with log.open("a") as sink:
        process = subprocess.Popen(
            [RAY, "start", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            process_group=group[0] if group else 0,
        )
    group[:1] = [os.getpgid(process.pid) if not group else group[0]]
    try:
        code = process.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = -1
    if code != 0:
        raise RuntimeError(f"`ray start {' '.join(args[:2])}` failed:\n{log.read_text()[-3000:]}")


def _stop_group(pgid: int) -> None:
    """SIGTERM the cluster's process group, then SIGKILL whatever is left after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _auth_env(token: str) -> dict[str, str]:
    return {"RAY_AUTH_MODE": AUTH_MODE, "RAY_AUTH_TOKEN": token}


def _cluster_env(token: str) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[3] / "src")
    # the raylet waits this long for its agents (default 15 s, too short on a busy 2-core host)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_agent_register_timeout_ms": "120000"}
    env.update(_auth_env(token))
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.pop("RAY_ADDRESS", None)
    return env


def _start_cluster(cpus: int, token: str, head_dir: Path, node_dir: Path, group: list[int]) -> str:
    """`ray start` the head, then the worker node; returns the head's address."""
    env, log = _cluster_env(token), head_dir / "ray-start.log"
    port = free_port()
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0"]
    common += ["--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats"]
    head = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={head_dir}"]
    # even without the dashboard, Ray runs a minimal one on 8265 unless told another port
    head += [f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}"]
    _ray_start([*head, *common, *_node_ports()], group, env, log)
    worker = [f"--address=127.0.0.1:{port}", f"--temp-dir={node_dir}"]
    _ray_start([*worker, *common, *_node_ports()], group, env, log)
    return f"127.0.0.1:{port}"


@contextmanager
def loopback_cluster(cpus_per_node: int = 1, attempts: int = 2) -> Iterator[LoopbackCluster]:
    """A head and one worker node on 127.0.0.1, ``cpus_per_node`` CPUs each; stopped on exit
    (also when the body raises). The project is importable on the workers through PYTHONPATH
    (same host, same virtual environment), as an image with the package installed would be.
    `ray start` gives a node 30 s to register (not configurable): on an overloaded host a start
    that timed out is stopped and tried once more."""
    for attempt in range(1, attempts + 1):
        # short paths: Ray's unix sockets live under the temp folder (108-byte limit)
        head_dir = Path(tempfile.mkdtemp(prefix="rayh-", dir="/tmp"))
        node_dir = Path(tempfile.mkdtemp(prefix="rayw-", dir="/tmp"))
        group: list[int] = []
        token = secrets.token_hex(32)
        try:
            try:
                address = _start_cluster(cpus_per_node, token, head_dir, node_dir, group)
            except RuntimeError:
                if attempt == attempts:
                    raise
                continue
            yield LoopbackCluster(address, token, group[0], (head_dir, node_dir))
            return
        finally:
            if group:
                _stop_group(group[0])
            for folder in (head_dir, node_dir):
                shutil.rmtree(folder, ignore_errors=True)
