"""Schema checks for a WDBC-style table; every failure is one sentence naming a column or row.

Rows are numbered like a spreadsheet user sees them: data row 1 is the first line after the header
(line 2 of the file).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from assay.errors import DataValidationError

ID_COLUMN = "id"
MIN_ROWS_PER_CLASS = 10
MALIGNANT_LABELS = frozenset({"m", "malignant", "1", "1.0"})
BENIGN_LABELS = frozenset({"b", "benign", "0", "0.0"})


def _row(position: int) -> str:
    return f"row {position + 1} (line {position + 2} of the file)"


def validate_frame(
    frame: pd.DataFrame, feature_names: Sequence[str], target: str, impute: str = "none"
) -> tuple[pd.DataFrame, pd.Series]:
    """Check a raw (all-string) table and return (X float64 in feature order, y 0/1)."""
    if impute not in ("none", "median"):
        raise DataValidationError(f"Unknown impute mode {impute!r}; use 'none' or 'median'.")
    if frame.empty:
        raise DataValidationError("The data file has a header but no data rows.")
    frame = frame.reset_index(drop=True)
    _check_columns(frame, feature_names, target)
    _check_ids(frame)
    X = _numeric_features(frame, feature_names, impute)
    y = _labels(frame[target], target)
    _check_classes(y, target)
    return X, y


def _check_columns(frame: pd.DataFrame, feature_names: Sequence[str], target: str) -> None:
    columns = list(frame.columns)
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataValidationError(f"The column(s) {_names(duplicated)} appear more than once.")
    if target not in columns:
        raise DataValidationError(
            f"The target column {target!r} is missing; the header has {len(columns)} columns "
            f"(choose another with --target)."
        )
    missing = [name for name in feature_names if name not in columns]
    if missing:
        raise DataValidationError(
            f"The feature column(s) {_names(missing)} are missing; the CSV needs all 30 "
            "scikit-learn WDBC feature names."
        )
    known = {*feature_names, target, ID_COLUMN}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise DataValidationError(
            f"Unknown column(s) {_names(unknown)}; expected only the 30 WDBC feature names, "
            f"the target {target!r} and an optional {ID_COLUMN!r}."
        )


def _check_ids(frame: pd.DataFrame) -> None:
    if ID_COLUMN not in frame.columns:
        return
    ids = frame[ID_COLUMN].str.strip()
    repeated = ids[ids.duplicated(keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        rows = [int(i) for i in repeated.index[repeated == first]]
        raise DataValidationError(
            f"Duplicated id {first!r} in column {ID_COLUMN!r} at "
            + " and ".join(_row(r) for r in rows[:2])
            + "."
        )


def _numeric_features(
    frame: pd.DataFrame, feature_names: Sequence[str], impute: str
) -> pd.DataFrame:
    X = pd.DataFrame(index=frame.index)
    for name in feature_names:
        raw = frame[name].astype(str).str.strip()
        blank = raw.isin(["", "nan", "NaN", "NA", "N/A", "null", "None"])
        values = pd.Series([_to_float(v) for v in raw.where(~blank, "nan")], index=raw.index)
        bad = values.isna() & ~blank | np.isinf(values)
        if bad.any():
            position = int(bad.idxmax())
            raise DataValidationError(
                f"Column {name!r} {_row(position)} holds {raw[position]!r}, which is not a "
                "finite number."
            )
        if blank.any():
            if impute == "none":
                position = int(blank.idxmax())
                raise DataValidationError(
                    f"Column {name!r} has a missing value at {_row(position)} "
                    f"({int(blank.sum())} missing in that column); fix the data or pass "
                    "--impute median."
                )
            if blank.all():
                raise DataValidationError(f"Column {name!r} has no values to impute from.")
            # Left missing on purpose: the median imputer is fitted inside each training fold.
        X[name] = values.astype("float64")
    return X


def _to_float(text: str) -> float:
    """Exact decimal -> float (pandas' fast parser is not round-trip exact at 17 digits)."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _labels(column: pd.Series, target: str) -> pd.Series:
    text = column.astype(str).str.strip().str.lower()
    malignant = text.isin(MALIGNANT_LABELS)
    benign = text.isin(BENIGN_LABELS)
    unknown = ~(malignant | benign)
    if unknown.any():
        position = int(unknown.idxmax())
        shown = column.iloc[position]
        what = "is empty" if not str(shown).strip() else f"holds {shown!r}"
        raise DataValidationError(
            f"Target column {target!r} {_row(position)} {what}; use M/B, malignant/benign or 1/0."
        )
    return pd.Series(malignant.astype("int64").to_numpy(), index=column.index)


def _check_classes(y: pd.Series, target: str) -> None:
    counts = {"benign": int((y == 0).sum()), "malignant": int((y == 1).sum())}
    present = [name for name, n in counts.items() if n > 0]
    if len(present) < 2:
        raise DataValidationError(
            f"Target column {target!r} holds a single class ({present[0]}); "
            "both malignant and benign rows are needed."
        )
    for name, n in counts.items():
        if n < MIN_ROWS_PER_CLASS:
            raise DataValidationError(
                f"Target column {target!r} has only {n} {name} row(s); at least "
                f"{MIN_ROWS_PER_CLASS} per class are needed for stratified cross-validation."
            )


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
