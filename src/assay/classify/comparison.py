"""Pairwise model comparison on the outer-fold scores, and the selection rule built on it.

Every pair of models is compared with the Nadeau-Bengio corrected resampled paired t-test on its
per-fold score differences (the same variance correction as the intervals in ``metrics``), the
p-values of all pairs are Holm-adjusted per metric, and the selected model is the simplest one
not credibly worse than the best by mean on the selection metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from assay.classify.metrics import corrected_variance_factor, oriented
from assay.stats import holm

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

ALPHA = 0.05
COMPARED_METRICS = ("roc_auc", "accuracy")

# Simplest first, by what the fitted model holds (15 RFE features in, default protocol).
SIMPLICITY_ORDER: tuple[tuple[str, str], ...] = (
    ("logistic_regression", "one linear model: 15 coefficients + an intercept"),
    ("adaboost", "50-100 decision stumps (one split each) with their weights"),
    ("gradient_boosting", "100 regression trees of depth 2-3 (at most 8 leaves each)"),
    ("hist_gradient_boosting", "100 trees of up to 7-15 leaves on binned features"),
    ("bagging", "50 fully grown decision trees"),
    ("random_forest", "100 decision trees (depth unlimited or 8)"),
    ("extra_trees", "100 randomised trees, grown deeper than a forest's for the same data"),
    ("soft_voting", "three models: a logistic regression, 100 extra trees, 100 boosted trees"),
    (
        "stacking",
        "four models: a logistic regression, a kNN (stores every training row), 50 extra "
        "trees and a logistic-regression combiner fitted on internal 3-fold predictions",
    ),
)
SIMPLICITY_RANK = {key: rank for rank, (key, _) in enumerate(SIMPLICITY_ORDER)}

RULE = (
    "the simplest model (simplicity order below) among the best model by mean {metric} over the "
    "outer folds and every model not credibly worse than it: Holm-adjusted p >= {alpha} in the "
    "Nadeau-Bengio corrected resampled paired t-test against the best on {metric} (the "
    "logistic-regression baseline is eligible)"
)
TEST_METHOD = (
    "Nadeau-Bengio corrected resampled paired t-test on the per-fold differences d_i of the "
    "k x r outer folds: t = mean(d) / sqrt((1/(kr) + n_test/n_train) * var(d)), df = kr - 1, "
    "two-sided; p-values Holm-adjusted over all model pairs, separately per metric"
)


@dataclass(frozen=True)
class PairedTest:
    mean_difference: float
    t: float
    p: float


def corrected_paired_t(
    a: Sequence[float], b: Sequence[float], n_train: float, n_test: float
) -> PairedTest:
    """Corrected resampled paired t-test of ``a - b`` (same folds, same order)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        raise ValueError("a paired test needs the scores of at least two folds")
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:  # identical on every fold, or a constant shift: no spread to test against
        return PairedTest(
            mean, 0.0 if mean == 0.0 else math.copysign(math.inf, mean), float(mean == 0.0)
        )
    t = mean / (sd * math.sqrt(corrected_variance_factor(len(d), n_train, n_test)))
    p = float(2.0 * stats.t.sf(abs(t), len(d) - 1))
    return PairedTest(mean, t, p)


def _scores(folds: pd.DataFrame, metric: str) -> pd.DataFrame:
    """fold_id x model table of one metric (only folds every model was scored on)."""
    table = folds.pivot(index="fold_id", columns="model", values=metric)
    return table.dropna().sort_index()


def pairwise(folds: pd.DataFrame, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (model pair, metric): mean difference a - b, t, raw and Holm-adjusted p."""
    keys = list(dict.fromkeys(folds["model"]))
    n_train, n_test = float(folds["n_train"].mean()), float(folds["n_test"].mean())
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        table = _scores(folds, metric)
        tests = [
            (a, b, corrected_paired_t(table[a], table[b], n_train, n_test))
            for a, b in combinations(keys, 2)
        ]
        adjusted = holm([test.p for _, _, test in tests])
        for (a, b, test), p_holm in zip(tests, adjusted, strict=True):
            rows.append(
                {
                    "metric": metric,
                    "a": a,
                    "b": b,
                    "mean_difference": test.mean_difference,
                    "t": test.t,
                    "p": test.p,
                    "p_holm": p_holm,
                    "distinguishable": p_holm < ALPHA,
                }
            )
    return rows


def p_holm_against(rows: list[dict[str, Any]], metric: str, key: str) -> dict[str, float]:
    """Holm-adjusted p of every other model against ``key`` on ``metric``."""
    out: dict[str, float] = {}
    for row in rows:
        if row["metric"] == metric and key in (row["a"], row["b"]):
            out[row["b"] if row["a"] == key else row["a"]] = row["p_holm"]
    return out


def simplest(keys: Sequence[str]) -> str:
    """The first of ``keys`` in SIMPLICITY_ORDER (unlisted models rank after every listed one)."""
    return min(keys, key=lambda k: (SIMPLICITY_RANK.get(k, len(SIMPLICITY_RANK)), k))


def select(folds: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The selection block of metrics.json: rule, best by mean, indistinguishable set, choice."""
    keys = list(dict.fromkeys(folds["model"]))
    means = {k: float(folds.loc[folds["model"] == k, metric].mean()) for k in keys}
    best = max(keys, key=lambda k: (oriented(metric, means[k]), -keys.index(k)))
    compared = list(dict.fromkeys([metric, *COMPARED_METRICS]))
    rows = pairwise(folds, compared) if len(keys) > 1 else []
    against_best = p_holm_against(rows, metric, best)
    tied = [k for k in keys if k != best and against_best[k] >= ALPHA]
    return {
        "rule": RULE.format(metric=metric, alpha=ALPHA),
        "metric": metric,
        "alpha": ALPHA,
        "test": TEST_METHOD,
        "simplicity_order": [{"model": k, "why": why} for k, why in SIMPLICITY_ORDER],
        "best_by_mean": best,
        "mean": means,
        "p_holm_vs_best": against_best,
        "indistinguishable": tied,
        "selected": simplest([best, *tied]),
        "pairwise": rows,
    }
