"""A step's success established by the project, not by the runner's status: after a step's
process exits 0, its executor output must exist and parse, and every output artifact and
parameter the step declares must be there.

kfp.local builds each task's ``--executor_input`` JSON (where the outputs go) and passes it on
the step's command line; the check reads it from there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXECUTOR_INPUT_FLAG = "--executor_input"
METADATA_ONLY = frozenset(
    {"system.Metrics", "system.ClassificationMetrics", "system.SlicedClassificationMetrics"}
)
"""Artifact types whose content is their metadata in the executor output (no file)."""


def executor_input_of(command: Sequence[str]) -> dict[str, Any] | None:
    """The executor input a KFP Python component gets on its command line (None if absent)."""
    for flag, value in itertools.pairwise(command):
        if flag == EXECUTOR_INPUT_FLAG:
            parsed: dict[str, Any] = json.loads(value)
            return parsed
    return None


def missing_outputs(command: Sequence[str]) -> str | None:
    """Why a step that exited 0 did not finish (None: every declared output is there)."""
    executor_input = executor_input_of(command)
    if executor_input is None:
        return None  # not a Python component: its outputs are whatever its command wrote
    outputs = executor_input.get("outputs", {})
    output_file = Path(outputs.get("outputFile", ""))
    if not output_file.is_file():
        return f"the step wrote no executor output ({output_file})"
    try:
        written = json.loads(output_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its executor output {output_file} is unreadable: {exc}"
    reported = written.get("artifacts", {})
    for name, declared in outputs.get("artifacts", {}).items():
        if name not in reported:
            return f"its executor output does not list output artifact {name!r}"
        for artifact in declared.get("artifacts", []):
            kind = artifact.get("type", {}).get("schemaTitle", "")
            path = Path(artifact.get("uri", ""))
            if kind not in METADATA_ONLY and not _present(path):
                return f"output artifact {name!r} is missing or empty ({path})"
    returned = written.get("parameterValues", {})
    for name, parameter in outputs.get("parameters", {}).items():
        if name not in returned and not Path(parameter.get("outputFile", "")).is_file():
            return f"output parameter {name!r} was never written"
    return None


def _present(path: Path) -> bool:
    """A file, or a folder with something in it."""
    if path.is_file():
        return True
    return path.is_dir() and any(path.iterdir())
