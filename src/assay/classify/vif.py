"""Variance inflation factors of the 30 features (statsmodels): an analysis, not a filter."""

from __future__ import annotations

import numpy as np
import pandas as pd


def compute_vif(X: pd.DataFrame) -> pd.DataFrame:
    """One row per feature: ``feature``, ``vif`` (with an intercept), highest first.

    Missing values (allowed by ``--impute median``) are filled with column medians for this
    analysis only; the models impute inside their training folds.
    """
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.tools.tools import add_constant

    X = X.fillna(X.median())
    design = add_constant(X.to_numpy(dtype=np.float64), has_constant="add")
    with np.errstate(divide="ignore", invalid="ignore"):
        values = [variance_inflation_factor(design, i + 1) for i in range(X.shape[1])]
    table = pd.DataFrame({"feature": list(X.columns), "vif": np.asarray(values, dtype=float)})
    return table.sort_values("vif", ascending=False, kind="stable").reset_index(drop=True)
