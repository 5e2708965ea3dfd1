"""Training and evaluation outputs: OOF tables, threshold on OOF, metrics.json, report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from assay.classify.metrics import METRIC_NAMES
from assay.classify.models import MODELS
from assay.data.wdbc import load_dataset
from assay.serving.sklearn_predictor import build_proba


def test_oof_covers_every_row_once_per_repeat(trained: dict[str, Any]) -> None:
    oof = pd.read_csv(trained["root"] / "train" / "cv" / "oof.csv")
    config = trained["config"]
    for _, rows in oof.groupby("model"):
        counts = rows.groupby("repeat")["row"].agg(["count", "nunique"])
        assert (counts["count"] == 569).all() and (counts["nunique"] == 569).all()
    assert set(oof["model"]) == set(config.model_keys())
    units = (trained["root"] / "train" / "cv" / "units.jsonl").read_text().splitlines()
    # every (model x outer fold) plus the single split per model, written as they finished
    assert len(units) == len(config.model_keys()) * (config.folds * config.repeats + 1)


def test_threshold_reaches_target_sensitivity_on_oof(trained: dict[str, Any]) -> None:
    oof = pd.read_csv(trained["root"] / "train" / "cv" / "oof.csv")
    selected = trained["summary"]["selected_model"]
    rows = oof[oof["model"] == selected]
    y, p = rows["y_true"].to_numpy(), rows["p_malignant"].to_numpy()
    threshold = trained["summary"]["threshold"]
    target = trained["config"].target_sensitivity
    assert np.mean(p[y == 1] >= threshold) >= target
    higher = p[(y == 1) & (p > threshold)]
    if len(higher):  # the next higher threshold would miss the target: it is the highest one
        assert np.mean(p[y == 1] >= higher.min()) < target


def test_metrics_json_holds_every_model_with_ci(trained: dict[str, Any]) -> None:
    metrics = json.loads((trained["root"] / "eval" / "metrics.json").read_text())
    keys = set(trained["config"].model_keys())
    assert set(metrics["models"]) == keys
    for model in metrics["models"].values():
        for name in METRIC_NAMES:
            s = model["cv"][name]
            assert s["ci_low"] <= s["mean"] <= s["ci_high"], name
            assert s["n"] == trained["config"].folds * trained["config"].repeats
        assert (
            model["predict_latency_ms_per_row"]["p95"] >= model["predict_latency_ms_per_row"]["p50"]
        )
        assert model["fit_seconds"]["mean"] > 0
    assert "single split" in metrics["single_split"]["label"].lower()
    assert set(metrics["single_split"]["models"]) == keys
    assert metrics["selected_model"] == trained["summary"]["selected_model"]
    assert metrics["protocol"]["tuning"]["search_spaces"]["extra_trees"]
    assert len(metrics["vif"]) == 30
    clinical = metrics["clinical_threshold"]
    assert clinical["sensitivity"] >= clinical["target_sensitivity"]


def test_evaluation_return_value_for_kfp(trained: dict[str, Any]) -> None:
    result = trained["evaluation"]
    assert result["selected_model"] == trained["summary"]["selected_model"]
    matrix = result["confusion_matrix"]["matrix"]
    assert result["confusion_matrix"]["labels"] == ["benign", "malignant"]
    assert sum(map(sum, matrix)) == 569 * trained["config"].repeats
    roc = result["roc_curve"]
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"]) > 2
    assert all(np.isfinite(roc["thresholds"]))
    assert 0.95 < result["scalar_metrics"]["roc_auc_mean"] <= 1.0


def test_report_is_self_contained(trained: dict[str, Any]) -> None:
    out: Path = trained["root"] / "eval"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for text in (
        "Leaderboard",
        "ROC",
        "Calibration",
        "Variance inflation",
        "Selected features",
        "Literature single split",
        "Model comparison and selection",
        "Decision curve",
        "each patient counted 1 times",
    ):
        assert text in page
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {
        "leaderboard.png",
        "roc_curves.png",
        "confusion_matrix.png",
        "calibration.png",
        "pairwise_pvalues.png",
        "decision_curve.png",
    }


def test_vif_table(trained: dict[str, Any]) -> None:
    vif = pd.read_csv(trained["root"] / "vif" / "vif.csv")
    assert len(vif) == 30 and list(vif.columns) == ["feature", "vif"]
    assert vif["vif"].is_monotonic_decreasing
    top = set(vif["feature"].head(6))
    assert {"mean radius", "mean perimeter"} & top  # radius/perimeter/area are near-collinear


def test_the_selection_rule_picks_the_exported_and_served_model(trained: dict[str, Any]) -> None:
    """The tiny run's baseline is not credibly worse than the best, so the rule exports it; the
    whole downstream path (card, exported pipeline, compiled serving) must take a non-ensemble."""
    metrics = json.loads((trained["root"] / "eval" / "metrics.json").read_text())
    selection = metrics["selection"]
    assert (
        selection["selected"] == metrics["selected_model"] == trained["summary"]["selected_model"]
    )
    assert selection["selected"] in [selection["best_by_mean"], *selection["indistinguishable"]]
    assert MODELS[selection["selected"]].baseline  # the baseline won (see docstring)
    assert {r["metric"] for r in selection["pairwise"]} == {"roc_auc", "accuracy"}
    model_dir = trained["root"] / "train" / "model"
    card = json.loads((model_dir / "model-card.json").read_text())
    assert card["estimator"] == selection["selected"]
    pipeline = joblib.load(model_dir / "model.joblib")
    rows = load_dataset().X.to_numpy()[:40]
    served = build_proba(pipeline, card["threshold"])
    assert np.allclose(served(rows), pipeline.predict_proba(rows)[:, 1], atol=1e-5)


def test_metrics_json_holds_the_analysis_blocks(trained: dict[str, Any]) -> None:
    metrics = json.loads((trained["root"] / "eval" / "metrics.json").read_text())
    literature = metrics["literature_split"]
    assert literature["quoted"]["correct"] == 113 and literature["quoted"]["n_test"] == 114
    assert set(literature["models"]) == set(trained["config"].model_keys())
    curves = metrics["decision_curve"]
    assert curves["thresholds"][0] == 0.01 and curves["thresholds"][-1] == 0.5
    assert metrics["selected_model"] in curves["models"]
    rfe = metrics["features"]["rfe_frequency"]
    assert rfe["folds"] == trained["config"].folds * trained["config"].repeats
    assert sum(rfe["frequency"].values()) == pytest.approx(trained["config"].k_features)
    perm = metrics["features"]["permutation_importance"]
    assert perm["label"].startswith("apparent")
    assert len(perm["features"]) == trained["config"].k_features
    assert "each patient counted" in metrics["confusion_matrix"]["note"]
