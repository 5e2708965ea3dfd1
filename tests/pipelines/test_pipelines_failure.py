"""A step that fails inside kfp.local surfaces as one sentence naming the step and the error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.classify.config import TrainingSettings as TrainingParams
from assay.commands._train_run import run_training_locally
from assay.workflow.errors import PipelineRunError
from assay_pipelines import get_pipeline

pytestmark = [pytest.mark.pipeline, pytest.mark.integration]


def test_failed_step_is_named_with_its_error(tmp_path: Path) -> None:
    # The CLI validates data before launching; calling the runner directly lets the
    # load-data component itself meet the missing file, as a pipeline on a cluster would.
    params = TrainingParams(data=str(tmp_path / "missing.csv"), registry=str(tmp_path / "reg"))
    steps: list[tuple[str, str]] = []

    with pytest.raises(PipelineRunError) as failure:
        run_training_locally(
            get_pipeline("training"),
            params,
            tmp_path / "run",
            on_task=lambda e, n: steps.append((e, n)),
        )

    message = str(failure.value)
    assert "Pipeline step 'load-data' failed" in message
    assert "missing.csv does not exist" in message
    assert str(tmp_path / "run" / "pipeline.log") in message
    assert steps[0] == ("start", "load-data")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed"
