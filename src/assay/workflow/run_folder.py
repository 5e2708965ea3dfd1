"""A run folder: ``run.json`` (what ran, how it ended) and the task outputs copied to its top."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.workflow.errors import PipelineRunError

RUN_FILE = "run.json"


@dataclass(frozen=True)
class TaskOutput:
    """Copy output ``output`` of task ``task`` to ``dest`` in the run folder; an empty ``dest``
    copies the output folder's content to the run folder itself."""

    task: str
    output: str
    dest: str = ""


def default_run_dir(prefix: str = "", base: Path = Path("runs")) -> Path:
    """``runs/<prefix><UTC timestamp>``."""
    return base / (prefix + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def write_run_record(run_dir: Path, record: Mapping[str, Any]) -> Path:
    """Write ``run.json`` atomically (arguments, outputs, versions, where things are)."""
    target = run_dir / RUN_FILE
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(target)
    return target


def copy_output(source: Path, dest: Path) -> Path | None:
    """Copy a task output (file or folder) into the run folder; None if the task made none."""
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    elif source.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    else:
        return None
    return dest


def collect_outputs(
    kfp_run_dir: Path,
    run_dir: Path,
    outputs: Iterable[TaskOutput],
    required: Iterable[str] = (),
) -> dict[str, str]:
    """Copy ``outputs`` from kfp.local's folder to the top of the run folder; name -> path.
    PipelineRunError if a ``required`` name is not among them."""
    files: dict[str, str] = {}
    for wanted in outputs:
        source = kfp_run_dir / wanted.task / wanted.output
        if wanted.dest:
            copied = copy_output(source, run_dir / wanted.dest)
            if copied is not None:
                files[wanted.dest] = str(copied)
        elif source.is_dir():
            for item in sorted(source.iterdir()):
                copy_output(item, run_dir / item.name)
                files[item.name] = str(run_dir / item.name)
    missing = [name for name in required if name not in files]
    if missing:
        raise PipelineRunError(f"The run left no {', '.join(missing)} under {kfp_run_dir}.")
    return files


def task_parameters(task_dir: Path) -> dict[str, Any]:
    """Output parameters a task wrote to its executor_output.json."""
    path = task_dir / "executor_output.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return dict(data.get("parameterValues", {}))
