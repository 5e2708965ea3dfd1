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
from dataclasses import replace
from pathlib import Path
from typing import Any

from assay.workflow.containers import Mount, StepContainers, start_container
from assay.workflow.step_check import missing_outputs

STEP_OUTPUT_ERROR = "StepOutputError"


def run_step_container(client: Any, steps: StepContainers, command: list[str], root: str) -> int:
    """Run one step to its end, printing its log; its exit status (the container is removed)."""
    with_root = replace(steps, mounts=(*steps.mounts, Mount(Path(root), writable=True)))
    container = start_container(client, with_root, command)
    try:
        lines = _LinePrinter()
        for chunk in container.logs(stream=True, follow=True):
            lines.feed(chunk)
        code = int(container.wait()["StatusCode"])
        # podman may end the stream of a container that exits at once before its last lines.
        lines.catch_up(container.logs())
        return code
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


class _LinePrinter:
    """Prints a container's log by whole lines: kfp.local indents every ``print`` call, and
    the engine's chunks split lines anywhere (an error line cut in two is not found)."""

    def __init__(self) -> None:
        self.seen = b""
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.seen += chunk
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in lines:
            print(line.decode(errors="replace"))

    def catch_up(self, whole: bytes) -> None:
        """Print what the stream missed of the whole log, then the last partial line."""
        if len(whole) > len(self.seen) and whole.startswith(self.seen):
            self.feed(whole[len(self.seen) :])
        if self.pending:
            print(self.pending.decode(errors="replace"))
            self.pending = b""


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
