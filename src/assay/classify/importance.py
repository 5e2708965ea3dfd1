"""Which features matter: RFE selection frequency over the outer folds, and the final model's
permutation importance.

The permutation importance is computed on the rows the final model was fitted on (all rows), so
it is labelled *apparent*: it says what the fitted model relies on, not how much each feature is
worth on new patients.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import roc_auc_score

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from numpy.typing import NDArray

PERMUTATION_REPEATS = 5
PERMUTATION_LABEL = (
    "apparent: computed on the final model's own training rows (all rows), drop in ROC-AUC when "
    "one selected feature is shuffled, mean +- std over {repeats} shuffles; features RFE dropped "
    "are not used by the model (importance 0 by construction)"
)


def rfe_frequency(folds: pd.DataFrame, feature_names: Sequence[str]) -> dict[str, Any]:
    """Per feature, the fraction of outer folds whose RFE kept it; and the distinct subsets."""
    per_fold = folds.drop_duplicates("fold_id").sort_values("fold_id")
    subsets = [tuple(sorted(json.loads(s))) for s in per_fold["selected"]]
    counts = Counter(i for subset in subsets for i in subset)
    n = len(subsets)
    frequency = {name: counts.get(i, 0) / n for i, name in enumerate(feature_names)} if n else {}
    ranked = sorted(frequency.items(), key=lambda kv: (-kv[1], list(feature_names).index(kv[0])))
    return {
        "folds": n,
        "distinct_subsets": len(set(subsets)),
        "most_common_subset_folds": Counter(subsets).most_common(1)[0][1] if n else 0,
        "frequency": dict(ranked),
        "note": "the RFE of each outer training split (fitted on its training rows only)",
    }


def permutation_importance(
    pipeline: Any,
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    columns: Sequence[int],
    feature_names: Sequence[str],
    random_state: int,
    repeats: int = PERMUTATION_REPEATS,
) -> dict[str, Any]:
    """Drop in ROC-AUC when each of ``columns`` is shuffled (only the columns the model uses)."""
    rng = np.random.default_rng(random_state)
    reference = float(roc_auc_score(y, pipeline.predict_proba(X)[:, 1]))
    features: list[dict[str, Any]] = []
    for column in columns:
        drops = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, column] = rng.permutation(shuffled[:, column])
            drops.append(
                reference - float(roc_auc_score(y, pipeline.predict_proba(shuffled)[:, 1]))
            )
        features.append(
            {
                "feature": str(feature_names[column]),
                "mean": float(np.mean(drops)),
                "std": float(np.std(drops, ddof=1)) if repeats > 1 else 0.0,
            }
        )
    features.sort(key=lambda f: -float(f["mean"]))
    return {
        "label": PERMUTATION_LABEL.format(repeats=repeats),
        "scoring": "roc_auc",
        "reference_roc_auc_apparent": reference,
        "repeats": repeats,
        "features": features,
    }
