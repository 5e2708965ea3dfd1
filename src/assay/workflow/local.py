"""The one local-run driver: a pipeline through kfp.local into a run folder.

Run folder (``out``)::

    run.json                               pipeline, arguments, status, collected files, ...
    pipeline.log                           every task's log
    <collected outputs>                    what the job asked for (``TaskOutput``)
    kfp/<pipeline>-<timestamp>/<task>/...  kfp.local's raw outputs (pipeline_root)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.workflow.containers import StepContainers
from assay.workflow.errors import PipelineRunError
from assay.workflow.kfp_local import TaskListener, execute
from assay.workflow.run_folder import TaskOutput, collect_outputs, write_run_record

RUNNER = "kfp.local (SubprocessRunner)"
DOCKER_RUNNER = "kfp.local (DockerRunner)"


@dataclass(frozen=True)
class LocalJob:
    """What to run and what to keep of it."""

    name: str
    """The pipeline's registered name (``assay compile``), recorded in run.json."""
    pipeline: Any
    """The @dsl.pipeline object."""
    arguments: Mapping[str, Any]
    outputs: Sequence[TaskOutput] = ()
    required: Sequence[str] = ()
    """Collected names a successful run must have produced."""
    summarise: Callable[[LocalRun], Mapping[str, Any]] | None = None
    """Extra run.json entries read from the finished run (a registered version, ...)."""


@dataclass
class LocalRun:
    """A finished local run: its folders, the collected files, its run.json record."""

    run_dir: Path
    kfp_run_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def task_dir(self, task: str) -> Path:
        return self.kfp_run_dir / task


def run_locally(
    job: LocalJob,
    out: Path,
    on_task: TaskListener | None = None,
    steps: StepContainers | None = None,
) -> LocalRun:
    """Run ``job`` into the folder ``out``; run.json says how it went, whatever happens.
    ``steps``: run each step in a container (kfp.local's DockerRunner) as described there."""
    run_dir = out.absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "pipeline": job.name,
        "runner": RUNNER if steps is None else f"{DOCKER_RUNNER} {steps.image}",
        "arguments": dict(job.arguments),
        "started_at": datetime.now(UTC).isoformat(),
        "status": "running",
    }
    write_run_record(run_dir, record)
    try:
        executed = execute(job.pipeline, job.arguments, run_dir, on_task=on_task, steps=steps)
        files = collect_outputs(executed.kfp_run_dir, run_dir, job.outputs, job.required)
    except PipelineRunError as exc:
        record.update(status="failed", error=str(exc))
        write_run_record(run_dir, record)
        raise
    except KeyboardInterrupt:
        record.update(status="interrupted")
        write_run_record(run_dir, record)
        raise
    run = LocalRun(run_dir=run_dir, kfp_run_dir=executed.kfp_run_dir, files=files, record=record)
    record.update(
        status="succeeded",
        finished_at=datetime.now(UTC).isoformat(),
        kfp_run_dir=str(executed.kfp_run_dir),
        files=files,
    )
    if job.summarise is not None:
        record.update(job.summarise(run))
    write_run_record(run_dir, record)
    return run
