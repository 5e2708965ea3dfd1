"""Pieces of the kfp.local runner that do not need a pipeline run: log parsing and collection."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from assay.commands._train_run import collect_outputs
from assay.workflow.errors import PipelineRunError
from assay.workflow.kfp_local import _TaskWatcher, last_error_line
from assay.workflow.run_folder import task_parameters

KFP_LOG = """\
07:00:49.576 - INFO - Executing task \x1b[96m'load-data'\x1b[0m
    Traceback (most recent call last):
    assay.errors.DataValidationError: The data file /x.csv does not exist.
07:00:50.001 - INFO - Task \x1b[96m'load-data'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m
"""


def test_watcher_reports_task_boundaries_and_failures(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    with (tmp_path / "log").open("w") as sink:
        watcher = _TaskWatcher(sink, lambda event, name: events.append((event, name)))
        with contextlib.redirect_stdout(watcher):
            for chunk in (KFP_LOG[:30], KFP_LOG[30:]):  # lines may arrive in pieces
                print(chunk, end="")
    assert events == [("start", "load-data"), ("end", "load-data")]
    assert watcher.failed_task == "load-data"
    written = (tmp_path / "log").read_text()
    assert "\x1b[" not in written  # colours stripped from the log file
    assert last_error_line(tmp_path / "log") == (
        "DataValidationError: The data file /x.csv does not exist."
    )


def test_last_error_line_of_a_clean_log_is_none(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("all good\n")
    assert last_error_line(tmp_path / "log") is None
    assert last_error_line(tmp_path / "absent") is None


def test_collect_outputs_flattens_the_evaluation_folder(tmp_path: Path) -> None:
    kfp_run = tmp_path / "kfp" / "assay-training-1"
    evaluation = kfp_run / "evaluate-models" / "evaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "metrics.json").write_text("{}")
    (evaluation / "roc.png").write_bytes(b"png")
    (kfp_run / "train-models" / "model").mkdir(parents=True)
    (kfp_run / "train-models" / "model" / "model.joblib").write_bytes(b"m")
    (kfp_run / "register-model").mkdir()
    (kfp_run / "register-model" / "executor_output.json").write_text(
        json.dumps({"parameterValues": {"version": "v4", "model_uri": "file:///r/m/v4"}})
    )
    run_dir = tmp_path / "run"

    files = collect_outputs(kfp_run, run_dir)

    assert set(files) == {"metrics.json", "roc.png", "model"}
    assert (run_dir / "model" / "model.joblib").read_bytes() == b"m"
    assert task_parameters(kfp_run / "register-model")["version"] == "v4"
    assert task_parameters(kfp_run / "absent") == {}


def test_collect_outputs_requires_metrics(tmp_path: Path) -> None:
    (tmp_path / "kfp").mkdir()
    with pytest.raises(PipelineRunError, match=r"no metrics\.json"):
        collect_outputs(tmp_path / "kfp", tmp_path / "run")


def test_kfp_local_root_logger_records_go_to_the_run_log(tmp_path: Path) -> None:
    import io
    import logging

    from assay.workflow.kfp_local import _kfp_records_to

    console = io.StringIO()
    console_handler = logging.StreamHandler(console)
    root = logging.getLogger()
    root.addHandler(console_handler)
    level = root.level
    root.setLevel(logging.INFO)
    sink = io.StringIO()
    try:
        with _kfp_records_to(sink):
            for path, message in (("/x/kfp/local/orchestrator/dag.py", "Skipping task"),
                                  ("/x/assay/cli.py", "ours")):  # fmt: skip
                record = logging.LogRecord("root", logging.INFO, path, 1, message, None, None)
                root.handle(record)
    finally:
        root.removeHandler(console_handler)
        root.setLevel(level)
    assert "Skipping task" in sink.getvalue() and "ours" not in sink.getvalue()
    assert "ours" in console.getvalue() and "Skipping task" not in console.getvalue()
    assert not console_handler.filters  # filters removed afterwards


def test_cv_unit_counts_for_the_training_progress_bar(tmp_path: Path) -> None:
    from assay.classify.config import TrainingSettings as TrainingParams
    from assay.classify.models import ALL_KEYS
    from assay.commands._train_run import expected_cv_units, finished_cv_units

    assert expected_cv_units(TrainingParams(models="adaboost, bagging", folds=3, repeats=2)) == 14
    assert expected_cv_units(TrainingParams()) == len(ALL_KEYS) * (5 * 5 + 1)
    assert finished_cv_units(tmp_path) == 0
    cv = tmp_path / "kfp" / "assay-training-1" / "train-models" / "training" / "cv"
    cv.mkdir(parents=True)
    (cv / "units.jsonl").write_text('{"model": "a"}\n{"model": "b"}\n')
    assert finished_cv_units(tmp_path) == 2
