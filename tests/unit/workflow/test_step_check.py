"""A step's success from its outputs (workflow.step_check) and the docker runner's first check:
a Docker-compatible engine to talk to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assay.errors import UsageError
from assay.workflow.containers import Mount, StepContainers, connect
from assay.workflow.docker_steps import step_status
from assay.workflow.step_check import missing_outputs


def _command(task: Path, artifacts: dict[str, str], parameters: tuple[str, ...] = ()) -> list[str]:
    """A KFP Python component's command line with its executor input, as kfp.local builds it."""
    executor_input: dict[str, Any] = {
        "inputs": {"parameterValues": {}},
        "outputs": {
            "artifacts": {
                name: {
                    "artifacts": [
                        {"name": name, "type": {"schemaTitle": kind}, "uri": str(task / name)}
                    ]
                }
                for name, kind in artifacts.items()
            },
            "parameters": {name: {"outputFile": str(task / name)} for name in parameters},
            "outputFile": str(task / "executor_output.json"),
        },
    }
    return ["sh", "-c", "...", "--executor_input", json.dumps(executor_input), "--function", "f"]


def _executor_output(task: Path, artifacts: tuple[str, ...], parameters: dict[str, Any]) -> None:
    task.mkdir(parents=True, exist_ok=True)
    written = {"artifacts": {name: {"artifacts": []} for name in artifacts}}
    if parameters:
        written["parameterValues"] = parameters
    (task / "executor_output.json").write_text(json.dumps(written))


def test_a_step_with_every_output_passes(tmp_path: Path) -> None:
    command = _command(tmp_path, {"model": "system.Model", "metrics": "system.Metrics"}, ("v",))
    _executor_output(tmp_path, ("model", "metrics"), {"v": "v1"})
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.joblib").write_bytes(b"x")
    assert missing_outputs(command) is None  # metrics live in the executor output, not a file
    assert step_status(0, command) is None


def test_no_executor_output_is_a_failure(tmp_path: Path) -> None:
    command = _command(tmp_path, {"model": "system.Model"})
    (tmp_path / "model").write_bytes(b"x")
    assert "wrote no executor output" in str(missing_outputs(command))
    assert str(step_status(0, command)).startswith("StepOutputError: the step wrote no executor")


@pytest.mark.parametrize("left", ["nothing", "empty folder"])
def test_a_missing_or_empty_artifact_is_a_failure(tmp_path: Path, left: str) -> None:
    command = _command(tmp_path, {"model": "system.Model"})
    _executor_output(tmp_path, ("model",), {})
    if left == "empty folder":
        (tmp_path / "model").mkdir()
    assert "output artifact 'model' is missing or empty" in str(missing_outputs(command))


def test_an_artifact_the_executor_output_does_not_list_is_a_failure(tmp_path: Path) -> None:
    command = _command(tmp_path, {"metrics": "system.Metrics"})
    _executor_output(tmp_path, (), {})
    assert "does not list output artifact 'metrics'" in str(missing_outputs(command))


def test_an_unwritten_output_parameter_is_a_failure(tmp_path: Path) -> None:
    command = _command(tmp_path, {}, ("version",))
    _executor_output(tmp_path, (), {})
    assert "output parameter 'version' was never written" in str(missing_outputs(command))


def test_a_truncated_executor_output_is_a_failure(tmp_path: Path) -> None:
    command = _command(tmp_path, {})
    (tmp_path / "executor_output.json").write_text('{"artifacts": {')
    assert "is unreadable" in str(missing_outputs(command))


def test_a_nonzero_exit_fails_whatever_the_outputs() -> None:
    assert step_status(1, ["true"]) == "the step's container exited with status 1"
    assert step_status(0, ["true"]) is None  # no executor input: nothing declared to check


def test_nested_mounts_fold_into_the_outer_one_unless_it_is_read_only(tmp_path: Path) -> None:
    steps = StepContainers(
        "image",
        (
            Mount(tmp_path / "run" / "kfp", writable=True),
            Mount(tmp_path / "run", writable=True),
            Mount(tmp_path / "data" / "x.csv"),
            Mount(tmp_path / "data", writable=False),
            Mount(tmp_path / "data" / "store", writable=True),
        ),
    )
    assert steps.volumes() == {
        str(tmp_path / "run"): {"bind": str(tmp_path / "run"), "mode": "rw"},
        str(tmp_path / "data"): {"bind": str(tmp_path / "data"), "mode": "ro"},
        str(tmp_path / "data" / "store"): {"bind": str(tmp_path / "data" / "store"), "mode": "rw"},
    }


def test_no_engine_at_docker_host_is_one_sentence_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing-here.sock")
    with pytest.raises(UsageError) as refused:
        connect()
    assert refused.value.exit_code == 2
    assert f"no Docker-compatible engine at unix://{tmp_path}/nothing-here.sock" in str(
        refused.value
    )
    assert "podman system service" in str(refused.value)


def test_a_containers_log_is_printed_by_whole_lines_whatever_its_chunks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assay.workflow.docker_steps import _LinePrinter

    lines = _LinePrinter()
    for chunk in (b"Traceback\n  File x\nRuntime", b"Error", b": boom\nla"):
        lines.feed(chunk)
    lines.catch_up(b"Traceback\n  File x\nRuntimeError: boom\nlast words")
    assert capsys.readouterr().out.splitlines() == [
        "Traceback",
        "  File x",
        "RuntimeError: boom",
        "last words",
    ]
