"""kfp.local's DockerRunner with each step's real exit status and a check of its outputs.

kfp.local (2.16) runs a step's container with ``auto_remove=True`` and, when the container is
gone before ``wait()`` answers (podman removes it as soon as it exits), takes the step as
succeeded: under podman a failed step looks green. Here the container is kept until its exit
status is read, then removed; a step that exited 0 must also have written its executor output
and every declared output (``step_check``). The step's container also gets the run's image,
user, mounts, network and environment (``StepContainers``), not just the component's image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.workflow.containers import LABEL, Mount, StepContainers
from assay.workflow.step_check import missing_outputs

STEP_OUTPUT_ERROR = "StepOutputError"


def run_step_container(client: Any, steps: StepContainers, command: list[str], root: str) -> int:
    """Run one step to its end, printing its log; its exit status (the container is removed)."""
    with_root = StepContainers(
        steps.image,
        (*steps.mounts, Mount(Path(root), writable=True)),
        steps.environment,
        steps.network,
        steps.user,
        steps.run_id,
    )
    container = client.containers.run(
        image=steps.image,
        command=command,
        detach=True,
        user=steps.user,
        network=steps.network,
        environment=steps.environment,
        volumes=with_root.volumes(),
        labels={LABEL: steps.run_id},
    )
    try:
        for chunk in container.logs(stream=True, follow=True):
            print(chunk.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def step_status(exit_code: int, command: list[str]) -> str | None:
    """Why the step failed, or None when it exited 0 and left every declared output."""
    if exit_code != 0:
        return f"the step's container exited with status {exit_code}"
    reason = missing_outputs(command)
    return f"{STEP_OUTPUT_ERROR}: {reason}" if reason else None


def _checked_handler(steps: StepContainers) -> type:
    import docker
    from kfp.local import docker_task_handler, status

    class CheckedDockerTaskHandler(docker_task_handler.DockerTaskHandler):
        def run(self) -> status.Status:
            client = docker.from_env(timeout=600)
            try:
                code = run_step_container(client, steps, self.full_command, self.pipeline_root)
            finally:
                client.close()
            failure = step_status(code, self.full_command)
            if failure is None:
                return status.Status.SUCCESS
            print(f"\n{failure}")
            return status.Status.FAILURE

    return CheckedDockerTaskHandler


@contextlib.contextmanager
def checked_docker_steps(steps: StepContainers) -> Iterator[None]:
    """While inside, kfp.local's DockerRunner runs steps through ``CheckedDockerTaskHandler``
    (kfp.local picks its handler class from this module attribute when each task starts)."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.DockerTaskHandler
    docker_task_handler.DockerTaskHandler = _checked_handler(steps)
    try:
        yield
    finally:
        docker_task_handler.DockerTaskHandler = original
