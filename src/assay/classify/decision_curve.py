"""Decision-curve analysis: net benefit of "treat (biopsy) when P(malignant) >= pt".

Net benefit at threshold probability pt is TP/n - FP/n * pt / (1 - pt) (Vickers & Elkin 2006):
true positives, less false positives weighted by the odds at which a clinician is indifferent.
References: treat none (0) and treat all (prevalence - (1 - prevalence) * pt / (1 - pt)).
Computed from out-of-fold predictions, per repeat (every patient once), then averaged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 51))  # the clinical range 0.01-0.50
TABLE_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
METHOD = (
    "net benefit = TP/n - FP/n * pt/(1-pt) of calling malignant when P(malignant) >= pt, on the "
    "calibrated out-of-fold predictions (the probability the server returns) of each repeat "
    "(every patient once), averaged over repeats (min and "
    "max over repeats shown); references treat-all and treat-none (0)"
)


def net_benefit(y_true: ArrayLike, p: ArrayLike, thresholds: Sequence[float]) -> list[float]:
    y = np.asarray(y_true).astype(bool)
    scores = np.asarray(p, dtype=float)
    n = len(y)
    out = []
    for pt in thresholds:
        called = scores >= pt
        tp = float(np.sum(called & y))
        fp = float(np.sum(called & ~y))
        out.append(tp / n - fp / n * pt / (1.0 - pt))
    return out


def treat_all(y_true: ArrayLike, thresholds: Sequence[float]) -> list[float]:
    prevalence = float(np.mean(np.asarray(y_true).astype(bool)))
    return [prevalence - (1.0 - prevalence) * pt / (1.0 - pt) for pt in thresholds]


def _per_repeat(oof: pd.DataFrame, key: str, thresholds: Sequence[float]) -> np.ndarray:
    rows = oof[oof["model"] == key]
    return np.array(
        [
            net_benefit(r["y_true"], r["p_malignant"], thresholds)
            for _, r in rows.groupby("repeat", sort=True)
        ]
    )


def decision_curves(
    oof: pd.DataFrame, keys: Sequence[str], thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, Any]:
    """Net benefit of each model in ``keys`` (mean, min, max over repeats) and the references."""
    first = oof[(oof["model"] == keys[0]) & (oof["repeat"] == oof["repeat"].min())]
    models = {}
    for key in dict.fromkeys(keys):
        values = _per_repeat(oof, key, thresholds)
        models[key] = {
            "net_benefit": values.mean(axis=0).tolist(),
            "min_over_repeats": values.min(axis=0).tolist(),
            "max_over_repeats": values.max(axis=0).tolist(),
        }
    return {
        "method": METHOD,
        "thresholds": list(thresholds),
        "treat_all": treat_all(first["y_true"], thresholds),
        "treat_none": [0.0] * len(thresholds),
        "models": models,
    }
