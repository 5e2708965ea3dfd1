"""Training and evaluation outputs: OOF tables, operating point, metrics.json, report.html."""

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


def _highest_reaching(y: np.ndarray, p: np.ndarray, threshold: float, target: float) -> None:
    """``threshold`` reaches ``target`` sensitivity on (y, p), and the next higher one does not.

    The CSVs hold 10 significant digits, hence the tolerance.
    """
    assert np.mean(p[y == 1] >= threshold - 1e-9) >= target
    higher = p[(y == 1) & (p > threshold + 1e-9)]
    if len(higher):
        assert np.mean(p[y == 1] >= higher.min()) < target


def test_served_threshold_comes_from_the_final_models_inner_oof(trained: dict[str, Any]) -> None:
    inner = pd.read_csv(trained["root"] / "train" / "cv" / "final_inner_oof.csv")
    assert len(inner) == 569  # the final refit's inner validation rows are all rows, once
    y, p = inner["y_true"].to_numpy(), inner["p_calibrated"].to_numpy()
    _highest_reaching(y, p, trained["summary"]["threshold"], trained["config"].target_sensitivity)


def test_held_out_operating_point_is_scored_at_each_folds_own_threshold(
    trained: dict[str, Any],
) -> None:
    cv = trained["root"] / "train" / "cv"
    table = pd.read_csv(cv / "operating_point.csv")
    calibrated = pd.read_csv(cv / "calibrated_oof.csv")
    config = trained["config"]
    assert len(table) == len(config.model_keys()) * config.folds * config.repeats
    for row in table.itertuples():
        fold = calibrated[
            (calibrated["model"] == row.model) & (calibrated["fold_id"] == row.fold_id)
        ]
        called = fold["p_calibrated"].to_numpy() >= row.threshold
        y = fold["y_true"].to_numpy() == 1
        assert (row.tp, row.fn, row.fp, row.tn) == (
            int(np.sum(called & y)),
            int(np.sum(~called & y)),
            int(np.sum(called & ~y)),
            int(np.sum(~called & ~y)),
        )
        assert row.inner_sensitivity >= config.target_sensitivity
    metrics = json.loads((trained["root"] / "eval" / "metrics.json").read_text())
    clinical = metrics["clinical_threshold"]
    selected = table[table["model"] == metrics["selected_model"]]
    assert clinical["held_out"]["sensitivity"]["n"] == len(selected)
    assert clinical["held_out"]["missed_positives_per_repeat"] == [int(selected["fn"].sum())]
    assert metrics["confusion_matrix"]["matrix"][1] == [
        int(selected["fn"].sum()),
        int(selected["tp"].sum()),
    ]


def test_apparent_figure_is_labelled_and_chosen_on_pooled_calibrated_oof(
    trained: dict[str, Any],
) -> None:
    metrics = json.loads((trained["root"] / "eval" / "metrics.json").read_text())
    clinical = metrics["clinical_threshold"]
    assert "sensitivity" not in clinical  # every figure says which estimate it is
    assert clinical["apparent"]["note"].startswith("APPARENT")
    calibrated = pd.read_csv(trained["root"] / "train" / "cv" / "calibrated_oof.csv")
    rows = calibrated[calibrated["model"] == metrics["selected_model"]]
    y, p = rows["y_true"].to_numpy(), rows["p_calibrated"].to_numpy()
    _highest_reaching(y, p, clinical["apparent"]["threshold"], clinical["target_sensitivity"])
    for key in trained["config"].model_keys():
        entry = metrics["calibration"]["models"][key]
        assert set(entry["before"]) == set(entry["after"]) == {"slope", "intercept", "brier"}
        assert metrics["operating_point"]["models"][key]["specificity"]["n"] == 3
    scalars = metrics["scalar_metrics"]
    assert "clinical_sensitivity_heldout_mean" in scalars
    assert "clinical_sensitivity_apparent" in scalars


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
        "Held-out estimate",
        "Apparent",
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
