"""Execute a pipeline with ``kfp.local`` (SubprocessRunner, or DockerRunner: a container a step).

The commands run the very pipeline that compiles for Kubeflow: kfp.local executes each
component in a subprocess of this virtualenv (``use_venv=False``: nothing is pip-installed,
the components' ``install_kfp_package=False``) and writes task outputs under
``<run_dir>/kfp/<pipeline>-<timestamp>/<task>/<output>``. Task logs go to
``<run_dir>/pipeline.log``; task boundaries go to an ``on_task(event, task)`` callback.
The subprocesses inherit this process's environment; values a step needs travel as pipeline
parameters. Given ``steps`` (``StepContainers``), each step runs in a container of the project
image instead (``docker_steps``: its real exit status and outputs decide its success).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from assay.tested_versions import require_tested
from assay.workflow.containers import StepContainers, grant
from assay.workflow.docker_steps import checked_docker_steps
from assay.workflow.errors import PipelineRunError

KFP_DIR = "kfp"
LOG_FILE = "pipeline.log"
TaskListener = Callable[[str, str], None]
"""``on_task(event, task_name)``: event is "start" or "end"."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_START = re.compile(r"Executing task '?([\w-]+)'?")
_TASK_END = re.compile(r"Task '?([\w-]+)'? finished with status (\w+)")
_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*Error): (.+)$")


@dataclass
class KfpLocalRun:
    """Where kfp.local left a pipeline's outputs."""

    run_dir: Path
    kfp_run_dir: Path
    log_file: Path
    outputs: dict[str, Any] = field(default_factory=dict)

    def task_dir(self, task: str) -> Path:
        return self.kfp_run_dir / task


def execute(
    pipeline: Any,
    arguments: Mapping[str, Any],
    run_dir: Path,
    *,
    on_task: TaskListener | None = None,
    steps: StepContainers | None = None,
) -> KfpLocalRun:
    """Run ``pipeline`` with ``arguments``; raise PipelineRunError naming the failed step."""
    require_tested("kfp")
    from kfp import local

    run_dir.mkdir(parents=True, exist_ok=True)
    kfp_root = run_dir / KFP_DIR
    log_file = run_dir / LOG_FILE
    in_containers: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if steps is not None:
        grant([kfp_root])  # the steps write their outputs here as the container user
        in_containers = checked_docker_steps(steps)
    before = set(kfp_root.iterdir()) if kfp_root.exists() else set()
    with (
        log_file.open("a", encoding="utf-8") as sink,
        _capture_stdout(sink, on_task) as watcher,
        _kfp_records_to(sink),
        in_containers,
    ):
        # DockerRunner() prints a line of its own: inside the capture it goes to the log.
        runner = local.SubprocessRunner(use_venv=False) if steps is None else local.DockerRunner()
        local.init(runner=runner, pipeline_root=str(kfp_root), raise_on_error=True)
        try:
            with warnings.catch_warnings():
                # kfp warns that our project image is not a "python" image; it has Python.
                warnings.filterwarnings("ignore", message=".*non-Python base image.*")
                task = pipeline(**arguments)
        except RuntimeError as exc:
            sentence = _failure_sentence(str(exc), log_file, watcher.failed_task)
            raise PipelineRunError(sentence) from exc
    created = sorted(set(kfp_root.iterdir()) - before)
    if not created:
        raise PipelineRunError(f"kfp.local wrote no outputs under {kfp_root}.")
    outputs = dict(getattr(task, "outputs", {}) or {})
    return KfpLocalRun(run_dir=run_dir, kfp_run_dir=created[-1], log_file=log_file, outputs=outputs)


def _failure_sentence(message: str, log_file: Path, failed_task: str | None) -> str:
    """'Pipeline step X failed: <last error line of its log>' plus where the full log is."""
    inner = re.search(r"Inner task failed: '?([\w-]+)'?", _ANSI.sub("", message))
    step = failed_task or (inner.group(1) if inner else None)
    reason = last_error_line(log_file)
    detail = f": {reason.rstrip('.')}" if reason else ""
    what = f"Pipeline step {step!r}" if step else "A pipeline step"
    return f"{what} failed{detail}. Full log: {log_file}"


def last_error_line(log_file: Path) -> str | None:
    """The last ``SomethingError: message`` line of a task log (the exception raised)."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match and "Inner task failed" not in line:
            return f"{match.group(1)}: {match.group(2).strip()}"
    return None


class _TaskWatcher(io.TextIOBase):
    """A stdout stand-in: everything goes to the log file, task boundaries to ``on_task``."""

    def __init__(self, sink: TextIO, on_task: TaskListener | None) -> None:
        self._sink = sink
        self._on_task = on_task
        self._pending = ""
        self.failed_task: str | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        clean = _ANSI.sub("", text)
        self._sink.write(clean)
        self._pending += clean
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._notice(line)
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def _notice(self, line: str) -> None:
        end = _TASK_END.search(line)
        if end and end.group(2) != "SUCCESS":
            self.failed_task = self.failed_task or end.group(1)
        if self._on_task is None:
            return
        if start := _TASK_START.search(line):
            self._on_task("start", start.group(1))
        elif end := _TASK_END.search(line):
            self._on_task("end", end.group(1))


@contextlib.contextmanager
def _capture_stdout(sink: TextIO, on_task: TaskListener | None) -> Iterator[_TaskWatcher]:
    watcher = _TaskWatcher(sink, on_task)
    try:
        with contextlib.redirect_stdout(watcher):
            yield watcher
    finally:
        watcher.flush()


class _FromKfpLocal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}kfp{os.sep}local{os.sep}" in record.pathname


@contextlib.contextmanager
def _kfp_records_to(sink: TextIO) -> Iterator[None]:
    """kfp.local also logs through the root logger outside its own log context (skipped
    conditions, workspace clean-up); send those records to the run log, not the console."""
    from_kfp = _FromKfpLocal()
    not_from_kfp = _Not(from_kfp)
    root = logging.getLogger()
    to_log = logging.StreamHandler(sink)
    to_log.addFilter(from_kfp)
    to_log.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(not_from_kfp)
    root.addHandler(to_log)
    try:
        yield
    finally:
        root.removeHandler(to_log)
        for handler in handlers:
            handler.removeFilter(not_from_kfp)


class _Not(logging.Filter):
    def __init__(self, inner: logging.Filter) -> None:
        super().__init__()
        self._inner = inner

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._inner.filter(record)
