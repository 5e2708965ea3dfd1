"""The Wisconsin Diagnostic Breast Cancer data: scikit-learn's copy or a user CSV, validated.

Malignant is the positive class (1) everywhere in assay. scikit-learn encodes malignant as 0, so
the default data set is re-encoded once, here, at load time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from assay.data.validate import validate_frame
from assay.errors import DataValidationError

SKLEARN_SOURCE = "sklearn:load_breast_cancer"
TARGET = "diagnosis"

# scikit-learn's spelling and order (load_breast_cancer().feature_names).
FEATURE_NAMES: tuple[str, ...] = (
    "mean radius",
    "mean texture",
    "mean perimeter",
    "mean area",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
    "radius error",
    "texture error",
    "perimeter error",
    "area error",
    "smoothness error",
    "compactness error",
    "concavity error",
    "concave points error",
    "symmetry error",
    "fractal dimension error",
    "worst radius",
    "worst texture",
    "worst perimeter",
    "worst area",
    "worst smoothness",
    "worst compactness",
    "worst concavity",
    "worst concave points",
    "worst symmetry",
    "worst fractal dimension",
)

Impute = Literal["none", "median"]


@dataclass(frozen=True)
class Dataset:
    """Validated features and labels. ``y`` is 1 for malignant, 0 for benign."""

    X: pd.DataFrame
    y: pd.Series
    source: str
    data_hash: str

    @property
    def n_rows(self) -> int:
        return len(self.y)


def data_hash(X: pd.DataFrame, y: pd.Series) -> str:
    """sha256 of the canonical bytes: float64 features in FEATURE_NAMES order, then int64 labels."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(FEATURE_NAMES).encode())
    digest.update(np.ascontiguousarray(X[list(FEATURE_NAMES)].to_numpy(np.float64)).tobytes())
    digest.update(np.ascontiguousarray(y.to_numpy(np.int64)).tobytes())
    return "sha256:" + digest.hexdigest()


def _make_dataset(X: pd.DataFrame, y: pd.Series, source: str) -> Dataset:
    X = X[list(FEATURE_NAMES)].astype("float64").reset_index(drop=True)
    y = y.astype("int64").reset_index(drop=True).rename(TARGET)
    return Dataset(X=X, y=y, source=source, data_hash=data_hash(X, y))


def load_sklearn_wdbc() -> Dataset:
    """scikit-learn's bundled WDBC (569 x 30), with malignant re-encoded to 1."""
    bunch = load_breast_cancer()
    if tuple(bunch.feature_names) != FEATURE_NAMES:  # pragma: no cover - guards a sklearn change
        raise RuntimeError("scikit-learn's WDBC feature names changed")
    malignant_code = list(bunch.target_names).index("malignant")
    X = pd.DataFrame(bunch.data, columns=list(FEATURE_NAMES))
    y = pd.Series((bunch.target == malignant_code).astype("int64"))
    return _make_dataset(X, y, SKLEARN_SOURCE)


def load_dataset(
    path: str | Path | None = None, target: str = TARGET, impute: Impute = "none"
) -> Dataset:
    """Load WDBC from scikit-learn (``path=None``) or a CSV file, and validate it.

    The CSV needs the 30 scikit-learn feature names (any order) and a ``target`` column holding
    M/B, malignant/benign or 1/0; an ``id`` column is checked for duplicates and otherwise ignored.
    Raises DataValidationError with a sentence naming the offending column or row.
    """
    if path is None:
        return load_sklearn_wdbc()
    frame = _read_csv(Path(path))
    X, y = validate_frame(frame, FEATURE_NAMES, target=target, impute=impute)
    return _make_dataset(X, y, str(path))


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataValidationError(f"The data file {path} does not exist.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            f"The data file {path} is not a readable CSV file: {exc}"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def write_dataset_csv(ds: Dataset, path: Path) -> None:
    """Write the artifact passed between pipeline steps: FEATURE_NAMES columns + diagnosis 0/1."""
    frame = ds.X[list(FEATURE_NAMES)].copy()
    frame[TARGET] = ds.y.to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.17g")
    tmp.replace(path)


def read_dataset_csv(path: Path) -> Dataset:
    """Read a file written by write_dataset_csv (validated like any CSV).

    Missing values in it were allowed by ``--impute median`` when the data was first loaded;
    they stay missing until a training fold's imputer fills them.
    """
    return load_dataset(path, target=TARGET, impute="median")
