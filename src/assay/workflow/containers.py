"""Containers for the docker runner: the engine (Docker, or podman's Docker-compatible socket
through ``DOCKER_HOST``), a network per run, long-lived services on it (a Ray head started as
KubeRay starts one, the simulated LLM endpoint), and the host folders the steps may use.

Every container runs the project image as its own user (uid 10001, as in the cluster), so a
host folder a step writes is handed to that user first (``grant``).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import UsageError
from assay.workflow.errors import PipelineRunError

CONTAINER_UID = 10001
CONTAINER_GID = 10001
RAY_CLIENT_PORT = 10001
RAY_GCS_PORT = 6379
RAY_READY = "Ray runtime started"
PASSED_ENV_PREFIXES = ("ASSAY_", "MINIO_")
PASSED_ENV_NAMES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY")
"""What of the caller's environment the steps get (kfp.local's subprocesses get all of it; a
container gets these, as a pod gets its ConfigMap and Secrets)."""
LABEL = "io.assay.run"
"""Label on every container and network a run makes: `podman ps --filter label=io.assay.run`."""


@dataclass(frozen=True)
class Mount:
    """A host folder or file a step sees at the same path (so paths in arguments stay valid)."""

    path: Path
    writable: bool = False


@dataclass
class StepContainers:
    """How each step's container runs: the image, user, mounts, network and environment."""

    image: str
    mounts: tuple[Mount, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    user: str = f"{CONTAINER_UID}:{CONTAINER_GID}"
    run_id: str = ""

    def volumes(self) -> dict[str, dict[str, str]]:
        """Docker SDK ``volumes`` for the mounts, outermost first, nested ones folded in."""
        volumes: dict[str, dict[str, str]] = {}
        for mount in sorted(self.mounts, key=lambda m: len(m.path.parts)):
            host = str(mount.path)
            mode = "rw" if mount.writable else "ro"
            if any(_covers(Path(outer), mount, volumes[outer]["mode"]) for outer in volumes):
                continue
            volumes[host] = {"bind": host, "mode": mode}
        return volumes


def _covers(outer: Path, mount: Mount, outer_mode: str) -> bool:
    inside = mount.path == outer or outer in mount.path.parents
    return inside and (outer_mode == "rw" or not mount.writable)


def connect() -> Any:
    """A Docker SDK client for DOCKER_HOST (podman: ``podman system service`` + its socket)."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise UsageError("--runner docker needs the 'docker' package.") from exc
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default Docker socket")
        raise UsageError(
            f"--runner docker found no Docker-compatible engine at {where} ({type(exc).__name__}); "
            "start one (podman: `podman system service --time=0 unix:///tmp/podman.sock &` and "
            "`export DOCKER_HOST=unix:///tmp/podman.sock`) or use the default --runner local."
        ) from exc
    return client


def require_image(client: Any, image: str) -> None:
    """Fail before any step if the image is neither present nor pullable."""
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except docker.errors.APIError as exc:
        raise UsageError(
            f"Image {image} is not on this engine and could not be pulled; build it with "
            "`make image` or pass --image REF (or ASSAY_IMAGE)."
        ) from exc


def passed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in environ.items()
        if key.startswith(PASSED_ENV_PREFIXES) or key in PASSED_ENV_NAMES
    }


def grant(paths: Sequence[Path], uid: int = CONTAINER_UID, gid: int = CONTAINER_GID) -> None:
    """Let the container user write ``paths`` (created if missing): as root, hand them over
    (recursively); otherwise they must already be writable for it (a rootful engine) or the
    engine maps the caller's uid (rootless podman with ``--userns=keep-id``)."""
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            continue
        for folder, dirs, files in os.walk(path):
            for name in (folder, *(os.path.join(folder, f) for f in dirs + files)):
                os.chown(name, uid, gid, follow_symlinks=False)


@contextlib.contextmanager
def run_network(client: Any, run_id: str) -> Iterator[str]:
    """A network of the run's own (services resolve each other by container name)."""
    network = client.networks.create(f"assay-{run_id}", labels={LABEL: run_id})
    try:
        yield str(network.name)
    finally:
        with contextlib.suppress(Exception):
            network.remove()


def start_container(
    client: Any, steps: StepContainers, command: Sequence[str], **extra: Any
) -> Any:
    """A detached container of the steps' image, user, network, environment and mounts."""
    return client.containers.run(
        image=steps.image,
        command=list(command),
        detach=True,
        user=steps.user,
        network=steps.network,
        environment=steps.environment,
        volumes=steps.volumes(),
        labels={LABEL: steps.run_id},
        **extra,
    )


@contextlib.contextmanager
def service(
    client: Any,
    steps: StepContainers,
    name: str,
    command: Sequence[str],
    ready_line: str,
    *,
    timeout_s: float = 180.0,
    attempts: int = 1,
    **run_args: Any,
) -> Iterator[Any]:
    """A long-lived container on the run's network, from the steps' image, as their user;
    ready once its log shows ``ready_line`` (one that exits first is started again, up to
    ``attempts`` times, as Kubernetes restarts a pod); stopped and removed on exit."""
    for attempt in range(1, attempts + 1):
        container = start_container(client, steps, command, name=name, **run_args)
        try:
            _wait_for_line(container, ready_line, timeout_s)
            break
        except PipelineRunError:
            _remove(container)
            if attempt == attempts:
                raise
    try:
        yield container
    finally:
        _remove(container)


def _remove(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.stop(timeout=10)
    with contextlib.suppress(Exception):
        container.remove(force=True)


def _wait_for_line(container: Any, line: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        logs = container.logs().decode(errors="replace")
        if line in logs:
            return
        if container.status in ("exited", "dead"):
            raise PipelineRunError(
                f"Container {container.name} exited before it was ready: {logs[-1500:]}"
            )
        time.sleep(0.5)
    raise PipelineRunError(f"Container {container.name} was not ready in {timeout_s:.0f} s.")


@contextlib.contextmanager
def ray_head(client: Any, steps: StepContainers, cpus: int) -> Iterator[str]:
    """A Ray head from the steps' image, started as KubeRay starts one (``ray start --head
    --block``); yields the Ray Client address the steps use as RAY_ADDRESS, as in the cluster."""
    name = f"assay-ray-head-{steps.run_id}"
    command = [
        "ray", "start", "--head", "--block",
        f"--port={RAY_GCS_PORT}", f"--ray-client-server-port={RAY_CLIENT_PORT}",
        f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
    ]  # fmt: skip
    # A busy machine can keep the raylet from registering within Ray's fixed 30 s: the head
    # then exits, and is started again as KubeRay restarts a failed head pod.
    with service(client, steps, name, command, RAY_READY, attempts=3, shm_size="1g"):
        yield f"ray://{name}:{RAY_CLIENT_PORT}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


@contextlib.contextmanager
def container_run(
    image: str,
    mounts: Sequence[Mount],
    *,
    ray_cpus: int | None = None,
    environ: Mapping[str, str] | None = None,
    services: Callable[[Any, StepContainers], contextlib.AbstractContextManager[dict[str, str]]]
    | None = None,
) -> Iterator[tuple[Any, StepContainers]]:
    """Everything the steps of one run need: the engine, the image, writable folders handed to
    the container user, a network, a Ray head when ``ray_cpus`` is given (its address becomes
    the steps' RAY_ADDRESS) and the caller's ``services`` (their returned variables too)."""
    client = connect()
    try:
        require_image(client, image)
        grant([m.path for m in mounts if m.writable])
        run_id = new_run_id()
        environment = passed_environment(os.environ if environ is None else environ)
        with contextlib.ExitStack() as stack:
            network = stack.enter_context(run_network(client, run_id))
            steps = StepContainers(image, tuple(mounts), environment, network, run_id=run_id)
            if ray_cpus is not None:
                address = stack.enter_context(ray_head(client, steps, ray_cpus))
                steps.environment["RAY_ADDRESS"] = address
            if services is not None:
                steps.environment.update(stack.enter_context(services(client, steps)))
            yield client, steps
    finally:
        client.close()
