"""The functions the KFP components call, with stand-in artifacts (no kfp needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from assay.classify.steps import (
    load_data_step,
    log_evaluation,
    markdown_summary,
    register_step,
    thin_roc,
    train_config,
)
from assay.errors import UsageError


class FakeArtifact:
    """What kfp passes to a component body: a path, a metadata dict and the log_* methods."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = {}
        self.logged: dict[str, float] = {}
        self.roc: tuple[list[float], list[float], list[float]] | None = None
        self.confusion: tuple[list[str], list[list[int]]] | None = None

    def log_metric(self, metric: str, value: float) -> None:
        self.logged[metric] = value

    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None:
        self.roc = (fpr, tpr, threshold)

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None:
        self.confusion = (categories, matrix)


RESULT = {
    "selected_model": "adaboost",
    "scalar_metrics": {
        "roc_auc_mean": 0.99,
        "roc_auc_ci_low": 0.98,
        "roc_auc_ci_high": 1.0,
        "clinical_threshold": 0.31,
        "undefined": float("nan"),
    },
    "roc_curve": {
        "fpr": [0.0, 0.1, 1.0],
        "tpr": [0.0, 0.9, 1.0],
        "thresholds": [math.inf, 0.4, 0.0],
    },
    "confusion_matrix": {"labels": ["benign", "malignant"], "matrix": [[340, 17], [4, 208]]},
}


def test_log_evaluation_feeds_the_dashboard_artifacts(tmp_path: Path) -> None:
    metrics, classification = FakeArtifact(tmp_path / "m"), FakeArtifact(tmp_path / "c")

    log_evaluation(RESULT, metrics, classification)

    assert metrics.logged == {"clinical_threshold": 0.31, "roc_auc_ci_high": 1.0,
                              "roc_auc_ci_low": 0.98, "roc_auc_mean": 0.99}  # fmt: skip
    assert classification.roc == ([0.0, 0.1, 1.0], [0.0, 0.9, 1.0], [1.0, 0.4, 0.0])
    assert classification.confusion == (["benign", "malignant"], [[340, 17], [4, 208]])


def test_thin_roc_keeps_ends_and_caps_points() -> None:
    n = 1001
    fpr = [i / (n - 1) for i in range(n)]
    tpr = [min(1.0, 2 * f) for f in fpr]
    thresholds = [math.inf, *[1 - f for f in fpr[1:]]]

    thin_fpr, thin_tpr, thin_thr = thin_roc(fpr, tpr, thresholds, max_points=100)

    assert len(thin_fpr) == len(thin_tpr) == len(thin_thr) <= 101
    assert (thin_fpr[0], thin_fpr[-1]) == (0.0, 1.0)
    assert thin_thr[0] == 1.0 and all(0.0 <= t <= 1.0 for t in thin_thr)
    with pytest.raises(ValueError, match="same length"):
        thin_roc([0.0], [0.0, 1.0], [1.0])


def test_markdown_summary_shows_mean_and_ci() -> None:
    text = markdown_summary(RESULT)
    assert text.startswith("# Selected model: `adaboost`")
    assert "| roc_auc | 0.9900 | 0.9800 - 1.0000 |" in text
    assert "TN 340, FP 17, FN 4, TP 208" in text


def test_train_config_maps_flat_pipeline_parameters() -> None:
    config = train_config(
        k_features=10, folds=3, repeats=1, tuning_iter=2, seed=7, models=" adaboost, bagging ",
        workers=0, target_sensitivity=0.95, model_name="m",
    )  # fmt: skip
    assert config.models == ["adaboost", "bagging"]
    assert config.workers is None  # 0 = all cores
    assert (config.k_features, config.folds, config.seed) == (10, 3, 7)


def test_train_config_errors_are_one_sentence() -> None:
    with pytest.raises(UsageError, match=r"^Invalid models: unknown model\(s\) \['nope'\]"):
        train_config(
            k_features=15, folds=5, repeats=1, tuning_iter=1, seed=1, models="nope", workers=0,
            target_sensitivity=0.98, model_name="m",
        )  # fmt: skip
    with pytest.raises(UsageError, match="Invalid folds"):
        train_config(
            k_features=15, folds=1, repeats=1, tuning_iter=1, seed=1, models="", workers=0,
            target_sensitivity=0.98, model_name="m",
        )  # fmt: skip


def test_load_data_step_writes_the_canonical_csv(tmp_path: Path) -> None:
    dataset = FakeArtifact(tmp_path / "dataset")
    summary = load_data_step("", "diagnosis", "none", dataset)
    assert summary["rows"] == 569 and summary["malignant"] == 212
    assert dataset.metadata["data_hash"].startswith("sha256:")
    header = Path(dataset.path).read_text().splitlines()[0].split(",")
    assert header[-1] == "diagnosis" and len(header) == 31


def test_register_step_returns_version_and_uri(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"x")
    (folder / "model-card.json").write_text(json.dumps({"estimator": "adaboost"}))
    root = "file://" + str(tmp_path / "reg")

    assert register_step(FakeArtifact(folder), root, "m") == ("v1", f"{root}/m/v1")
    assert register_step(FakeArtifact(folder), root, "m")[0] == "v2"
