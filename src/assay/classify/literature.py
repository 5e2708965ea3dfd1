"""The literature's single 80/20 split beside the cross-validated estimate.

"AdaBoost 99.12%" is 113 of 114 test rows of one split. This module says what such a figure is:
its exact binomial (Clopper-Pearson) interval, and where it falls among the outer-fold scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from assay.classify.folds import SINGLE_SPLIT_CALL
from assay.classify.metrics import CI_LEVEL

if TYPE_CHECKING:
    import pandas as pd

LITERATURE_MODEL = "adaboost"
LITERATURE_CORRECT, LITERATURE_ROWS = 113, 114  # "99.12%" = 113/114


def clopper_pearson(correct: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Exact binomial interval of a proportion ``correct / n`` (scipy's ``binomtest``)."""
    if not 0 <= correct <= n or n == 0:
        raise ValueError(f"need 0 <= correct <= n and n > 0, got {correct}/{n}")
    interval = stats.binomtest(correct, n).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def share_at_or_above(values: Any, value: float) -> float:
    """Fraction of ``values`` that are >= ``value`` (1e-9 tolerance for float round-trips)."""
    v = np.asarray(values, dtype=float)
    return float(np.mean(v >= value - 1e-9)) if len(v) else float("nan")


def _split_row(row: pd.Series, fold_accuracy: Any) -> dict[str, Any]:
    n = int(row["n_test"])
    correct = round(float(row["accuracy"]) * n)
    low, high = clopper_pearson(correct, n)
    return {
        "accuracy": float(row["accuracy"]),
        "correct": correct,
        "n_test": n,
        "n_train": int(row["n_train"]),
        "clopper_pearson_95": [low, high],
        "share_of_outer_folds_at_or_above": share_at_or_above(
            fold_accuracy, float(row["accuracy"])
        ),
    }


def literature_comparison(
    single: pd.DataFrame, folds: pd.DataFrame, summaries: dict[str, Any]
) -> dict[str, Any]:
    """Every model on the literature split beside its CV accuracy, plus the quoted figure."""
    if single.empty:
        return {}
    models: dict[str, Any] = {}
    for _, row in single.iterrows():
        key = str(row["model"])
        fold_accuracy = folds.loc[folds["model"] == key, "accuracy"].to_numpy()
        cv = summaries[key]["cv"]["accuracy"] if key in summaries else {}
        models[key] = {
            **_split_row(row, fold_accuracy),
            "cv_accuracy": {k: cv.get(k) for k in ("mean", "ci_low", "ci_high")},
        }
    quoted_low, quoted_high = clopper_pearson(LITERATURE_CORRECT, LITERATURE_ROWS)
    ada_folds = folds.loc[folds["model"] == LITERATURE_MODEL, "accuracy"].to_numpy()
    return {
        "split": SINGLE_SPLIT_CALL,
        "models": models,
        "quoted": {
            "model": LITERATURE_MODEL,
            "accuracy": LITERATURE_CORRECT / LITERATURE_ROWS,
            "correct": LITERATURE_CORRECT,
            "n_test": LITERATURE_ROWS,
            "clopper_pearson_95": [quoted_low, quoted_high],
            "share_of_outer_folds_at_or_above": share_at_or_above(
                ada_folds, LITERATURE_CORRECT / LITERATURE_ROWS
            ),
        },
    }
