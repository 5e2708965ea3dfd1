"""From the per-fold tables to per-model summaries and the selection (the clinical threshold:
``assay.classify.operating_point``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from assay.classify import comparison
from assay.classify.metrics import (
    METRIC_NAMES,
    metric_scale,
    oriented,
    percentiles,
    summarize,
)
from assay.classify.models import MODELS

if TYPE_CHECKING:
    import pandas as pd


def summarize_model(folds: pd.DataFrame, latency: pd.DataFrame, key: str) -> dict[str, Any]:
    """mean, std and 95% CI of every metric over one model's outer folds, plus times."""
    rows = folds[folds["model"] == key]
    n_train, n_test = float(rows["n_train"].mean()), float(rows["n_test"].mean())
    lat = latency[latency["model"] == key]["seconds"] if not latency.empty else []
    return {
        "label": MODELS[key].label,
        "baseline": MODELS[key].baseline,
        "cv": {
            m: summarize(rows[m].tolist(), n_train, n_test, metric_scale(m)) for m in METRIC_NAMES
        },
        "fit_seconds": summarize(rows["fit_seconds"].tolist(), n_train, n_test, "identity"),
        "tune_seconds": summarize(rows["tune_seconds"].tolist(), n_train, n_test, "identity"),
        "predict_latency_ms_per_row": {k: v * 1000.0 for k, v in percentiles(list(lat)).items()},
        "per_fold": {
            "fold_id": rows["fold_id"].astype(str).tolist(),
            **{m: rows[m].astype(float).tolist() for m in METRIC_NAMES},
        },
        "best_params_per_fold": {
            str(f): json.loads(p) for f, p in zip(rows["fold_id"], rows["best_params"], strict=True)
        },
    }


def summarize_all(folds: pd.DataFrame, latency: pd.DataFrame) -> dict[str, dict[str, Any]]:
    keys = list(dict.fromkeys(folds["model"]))
    return {key: summarize_model(folds, latency, key) for key in keys}


def leaderboard(summaries: dict[str, dict[str, Any]], metric: str) -> list[str]:
    """Model keys, best mean ``metric`` first (ties keep the model order)."""
    order = list(summaries)
    return sorted(
        order, key=lambda k: (-oriented(metric, summaries[k]["cv"][metric]["mean"]), order.index(k))
    )


def select_model(folds: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The selection block (see ``comparison.select``): its ``selected`` key is the choice.

    The simplest model not credibly worse than the best by mean ``metric``; the
    logistic-regression baseline is eligible.
    """
    return comparison.select(folds, metric)


def pooled_oof(oof: pd.DataFrame, key: str) -> tuple[Any, Any]:
    """(y_true, p_malignant) of one model's out-of-fold predictions, pooled over repeats."""
    rows = oof[oof["model"] == key].sort_values(["repeat", "row"])
    return rows["y_true"].to_numpy(), rows["p_malignant"].to_numpy()
