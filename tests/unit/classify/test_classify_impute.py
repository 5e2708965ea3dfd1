"""--impute median: missing values are filled by an imputer fitted inside each training fold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from assay.classify.folds import outer_folds
from assay.classify.preprocess import prepare_split
from assay.data.wdbc import FEATURE_NAMES, load_dataset, read_dataset_csv, write_dataset_csv


def _holey_dataset(tmp_path: Path) -> Path:
    """WDBC with 'mean radius' missing in every 7th row, written as the pipeline artifact."""
    ds = load_dataset()
    X = ds.X.copy()
    X.loc[X.index[::7], "mean radius"] = np.nan
    path = tmp_path / "holey.csv"
    write_dataset_csv(type(ds)(X=X, y=ds.y, source="test", data_hash="x"), path)
    return path


def test_imputer_medians_come_from_training_rows_only(tmp_path: Path) -> None:
    ds = read_dataset_csv(_holey_dataset(tmp_path))
    X, y = ds.X.to_numpy(), ds.y.to_numpy()
    column = FEATURE_NAMES.index("mean radius")
    fold = outer_folds(y, 3, 1, 11)[0]
    split = prepare_split(X, y, fold, k_features=8, seed=11)
    learned = split.preprocessor.named_steps["imputer"].statistics_[column]
    assert learned == np.nanmedian(X[fold.train, column])
    assert learned != np.nanmedian(X[:, column])  # the whole-file median would be a leak
    assert not np.isnan(split.X_test).any()


def test_exported_model_carries_its_imputer_only_when_data_had_gaps(
    tmp_path: Path, tiny_config: Any, trained: dict[str, Any]
) -> None:
    from assay.classify.stages import run_training

    config = tiny_config(models=["logistic_regression"])
    summary = run_training(
        _holey_dataset(tmp_path), config, tmp_path / "train", executor="inline", progress=False
    )
    holey_model = joblib.load(Path(summary["model_dir"]) / "model.joblib")
    assert holey_model.steps[0][0] == "imputer"
    row = load_dataset().X.to_numpy()[:1].copy()
    row[0, FEATURE_NAMES.index("mean radius")] = np.nan
    assert np.isfinite(holey_model.predict_proba(row)).all()

    complete_model = joblib.load(Path(trained["summary"]["model_dir"]) / "model.joblib")
    assert [name for name, _ in complete_model.steps] == ["scaler", "select", "classifier"]
