"""WDBC loading: scikit-learn default (malignant re-encoded to 1), CSV input, and every validation
error with a message naming the offending column or row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.data.wdbc import (
    FEATURE_NAMES,
    TARGET,
    load_dataset,
    read_dataset_csv,
    write_dataset_csv,
)
from assay.errors import DataValidationError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The sklearn data as a user CSV would hold it: id column, M/B labels."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    out = pd.DataFrame(bunch.data, columns=list(FEATURE_NAMES))
    out.insert(0, "id", [f"P{i:04d}" for i in range(len(out))])
    out[TARGET] = np.where(bunch.target == 0, "M", "B")  # sklearn: 0 = malignant
    return out


def _csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _error(tmp_path: Path, frame: pd.DataFrame, **kwargs: object) -> str:
    with pytest.raises(DataValidationError) as info:
        load_dataset(_csv(tmp_path, frame), **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    return str(info.value)


def test_default_is_sklearn_with_malignant_as_one() -> None:
    from sklearn.datasets import load_breast_cancer

    ds = load_dataset()
    bunch = load_breast_cancer()
    assert ds.X.shape == (569, 30)
    assert tuple(ds.X.columns) == FEATURE_NAMES
    assert ds.y.sum() == 212  # 212 malignant, 357 benign
    assert (ds.y.to_numpy() == (bunch.target == 0)).all()
    assert ds.source == "sklearn:load_breast_cancer"
    assert ds.data_hash.startswith("sha256:") and len(ds.data_hash) == 7 + 64


def test_csv_any_column_order_labels_and_id(tmp_path: Path, frame: pd.DataFrame) -> None:
    shuffled = frame[[TARGET, *reversed(FEATURE_NAMES), "id"]]
    ds = load_dataset(_csv(tmp_path, shuffled))
    assert tuple(ds.X.columns) == FEATURE_NAMES
    assert ds.data_hash == load_dataset().data_hash
    words = frame.assign(**{TARGET: frame[TARGET].map({"M": "malignant", "B": "Benign"})})
    assert load_dataset(_csv(tmp_path, words)).data_hash == ds.data_hash
    digits = frame.drop(columns="id").assign(**{TARGET: (frame[TARGET] == "M").astype(int)})
    assert load_dataset(_csv(tmp_path, digits)).data_hash == ds.data_hash


def test_custom_target_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    renamed = frame.rename(columns={TARGET: "label"})
    assert load_dataset(_csv(tmp_path, renamed), target="label").y.sum() == 212
    assert "'diagnosis' is missing" in _error(tmp_path, renamed)


def test_dataset_csv_round_trip(tmp_path: Path) -> None:
    ds = load_dataset()
    write_dataset_csv(ds, tmp_path / "ds.csv")
    back = read_dataset_csv(tmp_path / "ds.csv")
    assert back.data_hash == ds.data_hash
    np.testing.assert_array_equal(back.X.to_numpy(), ds.X.to_numpy())


def test_missing_feature_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    message = _error(tmp_path, frame.drop(columns=["worst area"]))
    assert "'worst area'" in message and "missing" in message


def test_unknown_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    message = _error(tmp_path, frame.assign(age=40))
    assert "Unknown column(s) 'age'" in message


def test_non_numeric_value_names_column_and_row(tmp_path: Path, frame: pd.DataFrame) -> None:
    bad = frame.astype({"mean texture": object})
    bad.loc[6, "mean texture"] = "twelve"
    message = _error(tmp_path, bad)
    assert "'mean texture'" in message and "row 7" in message and "'twelve'" in message


def test_missing_value_is_an_error_unless_imputed(tmp_path: Path, frame: pd.DataFrame) -> None:
    holey = frame.copy()
    holey.loc[3, "mean radius"] = np.nan
    message = _error(tmp_path, holey)
    assert "'mean radius'" in message and "row 4" in message and "--impute median" in message
    ds = load_dataset(_csv(tmp_path, holey), impute="median")
    # Kept missing: the median is learned inside each training fold, never over the whole file.
    assert np.isnan(ds.X.loc[3, "mean radius"])
    assert ds.X["mean radius"].isna().sum() == 1


def test_single_class(tmp_path: Path, frame: pd.DataFrame) -> None:
    message = _error(tmp_path, frame[frame[TARGET] == "B"])
    assert "single class (benign)" in message and "'diagnosis'" in message


def test_fewer_than_ten_rows_in_a_class(tmp_path: Path, frame: pd.DataFrame) -> None:
    few = pd.concat([frame[frame[TARGET] == "B"], frame[frame[TARGET] == "M"].head(9)])
    message = _error(tmp_path, few)
    assert "only 9 malignant" in message and "at least 10" in message


def test_duplicated_ids_name_the_rows(tmp_path: Path, frame: pd.DataFrame) -> None:
    dup = frame.copy()
    dup.loc[10, "id"] = dup.loc[2, "id"]
    message = _error(tmp_path, dup)
    assert "Duplicated id 'P0002'" in message and "row 3" in message and "row 11" in message


def test_unknown_label_names_the_row(tmp_path: Path, frame: pd.DataFrame) -> None:
    odd = frame.copy()
    odd.loc[0, TARGET] = "maybe"
    message = _error(tmp_path, odd)
    assert "row 1" in message and "'maybe'" in message and "M/B" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
