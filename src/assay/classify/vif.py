"""Variance inflation factors of the 30 features (statsmodels): an analysis, not a filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from assay.data.wdbc import read_dataset_csv
from assay.obs.logging import get_logger

log = get_logger(__name__)

VIF_CSV = "vif.csv"


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


def run_vif(dataset_csv: Path, out_dir: Path) -> pd.DataFrame:
    """VIF of every feature on the (training) data set; writes ``out_dir/vif.csv``."""
    ds = read_dataset_csv(Path(dataset_csv))
    table = compute_vif(ds.X)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (VIF_CSV + ".tmp")
    table.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(out_dir / VIF_CSV)
    log.info("vif computed", features=len(table), max_vif=float(table["vif"].max()))
    return table
