"""Shared fixtures for the classifier tests: the WDBC artifact and one tiny training run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.classify.config import TrainConfig

TINY_MODELS = ["extra_trees", "logistic_regression"]


def tiny_config(**overrides: Any) -> TrainConfig:
    """3 folds x 1 repeat, 2 inner folds, 2 candidates, 2 cheap models: seconds, not minutes."""
    values: dict[str, Any] = {
        "folds": 3,
        "repeats": 1,
        "inner_folds": 2,
        "tuning_iter": 2,
        "k_features": 8,
        "models": TINY_MODELS,
        "seed": 7,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(name="tiny_config")
def tiny_config_fixture() -> Any:
    """The ``tiny_config`` factory, for tests that need their own variant."""
    return tiny_config


@pytest.fixture(scope="session")
def wdbc_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from assay.data.wdbc import load_dataset, write_dataset_csv

    path = tmp_path_factory.mktemp("wdbc") / "dataset.csv"
    write_dataset_csv(load_dataset(), path)
    return path


@pytest.fixture(scope="session")
def trained(wdbc_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run of the three stages (units inline, no Ray), shared by the read-only tests."""
    from assay.classify.stages import run_evaluation, run_training
    from assay.classify.vif import run_vif

    root = tmp_path_factory.mktemp("run")
    run_vif(wdbc_csv, root / "vif")
    config = tiny_config()
    summary = run_training(wdbc_csv, config, root / "train", executor="inline", progress=False)
    evaluation = run_evaluation(root / "train", root / "vif" / "vif.csv", root / "eval")
    return {"root": root, "config": config, "summary": summary, "evaluation": evaluation}
