"""The docker runner's steps, each in a container of the project image (podman's Docker API):
a step's success is its real exit status plus its declared outputs, never kfp.local's guess, and
a Ray step joins a Ray head running in another container of the same image.

(No ``from __future__ import annotations``: kfp reads the components' annotations as types.)
Each test runs a one-step pipeline of its own (the components below), so a failure is planted
exactly where the test says. Nothing is mocked: real containers, real kfp.local, real Ray.
"""

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Output

from assay.workflow.containers import LABEL, Mount, container_run
from assay.workflow.errors import PipelineRunError
from assay.workflow.local import LocalJob, run_locally
from assay.workflow.run_folder import task_parameters
from assay_components._base import COMPONENT_OPTIONS

pytestmark = [pytest.mark.container, pytest.mark.pipeline, pytest.mark.integration]


@dsl.component(**COMPONENT_OPTIONS)
def explode(result: Output[Artifact]):
    raise RuntimeError("planted failure inside the explode step")


@dsl.component(**COMPONENT_OPTIONS)
def quit_early(result: Output[Artifact]):
    import sys

    sys.exit(0)  # status 0, yet neither the artifact nor the executor output is written


@dsl.component(**COMPONENT_OPTIONS)
def write_result(result: Output[Artifact]):
    with open(result.path, "w") as handle:
        handle.write("done")


@dsl.component(**COMPONENT_OPTIONS)
def where_ray_runs() -> NamedTuple("Hosts", step=str, task=str):  # type: ignore[valid-type]
    import socket
    from collections import namedtuple

    from assay.parallel import init_ray

    ray = init_ray()

    @ray.remote
    def hostname() -> str:
        import socket

        return socket.gethostname()

    hosts = namedtuple("Hosts", ["step", "task"])
    return hosts(socket.gethostname(), ray.get(hostname.remote()))


def _one_step(component: Any, name: str) -> Any:
    @dsl.pipeline(name=name)
    def pipeline() -> None:
        component()

    return pipeline


def _run(pipeline: Any, image: str, run_dir: Path, **run: Any) -> Any:
    user = run.pop("user", None)
    with container_run(image, [Mount(run_dir, writable=True)], **run) as (client, steps):
        if user is not None:
            steps.user = user
        job = LocalJob(name=pipeline.name, pipeline=pipeline, arguments={})
        return client, steps, run_locally(job, run_dir, steps=steps)


def _failure(pipeline: Any, image: str, run_dir: Path, **run: Any) -> str:
    with pytest.raises(PipelineRunError) as failed:
        _run(pipeline, image, run_dir, **run)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == str(failed.value)
    return str(failed.value)


def test_a_step_that_raises_fails_the_run_naming_the_step(
    docker_env: str, container_image: str, tmp_path: Path
) -> None:
    message = _failure(_one_step(explode, "planted-raise"), container_image, tmp_path / "run")
    assert "Pipeline step 'explode' failed" in message
    assert "RuntimeError: planted failure inside the explode step" in message


def test_a_step_whose_container_cannot_write_its_output_fails_the_run(
    docker_env: str, container_image: str, tmp_path: Path
) -> None:
    """The run folder is handed to the image's user (10001); the step runs as nobody."""
    pipeline = _one_step(write_result, "unwritable")
    message = _failure(pipeline, container_image, tmp_path / "run", user="65534:65534")
    assert "Pipeline step 'write-result' failed" in message
    assert "PermissionError" in message


def test_a_step_that_exits_0_without_its_outputs_fails_the_run(
    docker_env: str, container_image: str, tmp_path: Path
) -> None:
    message = _failure(_one_step(quit_early, "quits-early"), container_image, tmp_path / "run")
    assert "Pipeline step 'quit-early' failed" in message
    assert "StepOutputError: the step wrote no executor output" in message


def test_a_step_that_writes_its_outputs_succeeds_and_leaves_no_container(
    docker_env: str, container_image: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    client, steps, run = _run(_one_step(write_result, "writes"), container_image, run_dir)
    assert (run.task_dir("write-result") / "result").read_text() == "done"
    assert run.record["status"] == "succeeded"
    assert run.record["runner"].endswith(container_image)
    left = client.containers.list(all=True, filters={"label": f"{LABEL}={steps.run_id}"})
    assert left == []


def test_a_ray_step_runs_its_tasks_on_a_ray_head_in_another_container(
    docker_env: str, container_image: str, tmp_path: Path
) -> None:
    """As in the cluster: the step's RAY_ADDRESS is ray://<head>:10001 (Ray Client), the head
    is `ray start --head --block` from the same image; the task runs on the head's host."""
    pipeline = _one_step(where_ray_runs, "ray-probe")
    run_dir = tmp_path / "run"
    with container_run(container_image, [Mount(run_dir, writable=True)], ray_cpus=1) as (
        client,
        steps,
    ):
        head = client.containers.get(f"assay-ray-head-{steps.run_id}")
        head_host = head.attrs["Config"]["Hostname"]
        run = run_locally(LocalJob("ray-probe", pipeline, {}), run_dir, steps=steps)
    hosts = task_parameters(run.task_dir("where-ray-runs"))
    assert steps.environment["RAY_ADDRESS"] == f"ray://assay-ray-head-{steps.run_id}:10001"
    assert hosts["task"] == head_host
    assert hosts["step"] != head_host
