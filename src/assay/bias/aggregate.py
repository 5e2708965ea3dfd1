"""From the long ratings table to analysis-ready shapes: valid ratings, per-passage statistics,
and the raters x passages reliability matrix.

The study's scale decides which column is the rating: ``score`` for interval (-2..+2) and
ordinal (ordered categories), ``biased`` (0/1) for binary. On the ordinal scale a score on the
prompt's -2..+2 scale counts as its nearest anchor (-2, -1, 0, +1, +2: the five points the
prompt names; an LLM answers between them), so an LLM-rated study has five categories; scores
outside that range (an imported Likert scale) are categories as they are.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from assay.errors import DataValidationError, UsageError

Scale = Literal["interval", "binary", "ordinal"]
SCALES: tuple[str, ...] = get_args(Scale)
MAX_ORDINAL_LEVELS = 15
_LEVEL_OF_MEASUREMENT = {"interval": "interval", "binary": "nominal", "ordinal": "ordinal"}


def check_scale(scale: str) -> Scale:
    if scale not in SCALES:
        raise UsageError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
    return scale  # type: ignore[return-value]


def value_column(scale: Scale) -> str:
    """The ratings-table column holding the rating on this scale."""
    return "biased" if scale == "binary" else "score"


def level_of_measurement(scale: Scale) -> str:
    """Krippendorff's level of measurement for the scale (binary labels are nominal)."""
    return _LEVEL_OF_MEASUREMENT[scale]


def ordinal_categories(score: pd.Series) -> pd.Series:
    """Scores as ordinal categories: on the prompt's -2..+2 scale (every score within it), each
    rounded to its nearest whole point, halves away from zero; otherwise as they are."""
    present = score.dropna()
    if present.empty or present.min() < -2 or present.max() > 2:
        return score
    return np.sign(score) * np.floor(score.abs() + 0.5)


def valid_ratings(ratings: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    """Rows that hold a usable rating: no error, a value on the scale, one per (passage, rater).

    A repeated (passage, rater) pair keeps its first valid row. The result has a float
    ``value`` column. Raises DataValidationError when nothing is left or values are off-scale.
    """
    column = value_column(scale)
    if column not in ratings:
        raise DataValidationError(f"The ratings have no {column!r} column for a {scale} study.")
    error = ratings["error"].fillna("").astype(str) if "error" in ratings else ""
    value = pd.to_numeric(ratings[column], errors="coerce").astype(float)
    if scale == "ordinal":
        value = ordinal_categories(value)
    usable = ratings.assign(value=value)[(error == "") & value.notna()]
    usable = usable.drop_duplicates(["passage_id", "rater"], keep="first")
    if usable.empty:
        raise DataValidationError(f"No valid {column!r} ratings to analyse on the {scale} scale.")
    values = usable["value"]
    if scale == "binary" and not values.isin([0.0, 1.0]).all():
        raise DataValidationError("Binary ratings must be 0 or 1 in the 'biased' column.")
    if scale == "interval" and ((values < -2) | (values > 2)).any():
        raise DataValidationError("Interval scores must lie in [-2, +2] (the DESIGN.md scale).")
    if scale == "ordinal" and values.nunique() > MAX_ORDINAL_LEVELS:
        raise DataValidationError(
            f"An ordinal study needs at most {MAX_ORDINAL_LEVELS} distinct score values, "
            f"found {values.nunique()}; round the scores or use the interval scale."
        )
    return usable.reset_index(drop=True)


def passage_stats(ratings: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    """Per passage: publisher, textbook, n valid, n failed, mean, median, std (disagreement)."""
    valid = valid_ratings(ratings, scale)
    keys = ["passage_id", "publisher"]
    stats = valid.groupby("passage_id")["value"].agg(
        n_valid="count", mean="mean", median="median", std="std"
    )
    facts = ratings.drop_duplicates("passage_id").set_index("passage_id")
    frame = facts[["publisher"]].copy()
    frame["textbook"] = facts.get("textbook", pd.NA)
    frame = frame.join(stats, how="left")
    frame["n_valid"] = frame["n_valid"].fillna(0).astype(int)
    attempted = ratings.groupby("passage_id").size()
    frame["n_failed"] = (attempted - frame["n_valid"]).clip(lower=0).astype(int)
    return frame.reset_index()[[*keys, "textbook", "n_valid", "n_failed", "mean", "median", "std"]]


def reliability_matrix(valid: pd.DataFrame) -> pd.DataFrame:
    """Raters (rows) x passages (columns) of ratings, NaN where a rater did not rate."""
    return valid.pivot(index="rater", columns="passage_id", values="value").sort_index()


def has_textbooks(valid: pd.DataFrame) -> bool:
    return "textbook" in valid and bool(valid["textbook"].notna().any())


def ordinal_levels(valid: pd.DataFrame) -> np.ndarray:
    """The sorted distinct values of an ordinal study (its ordered categories)."""
    return np.sort(valid["value"].unique())


def failures_by_publisher(ratings: pd.DataFrame, scale: Scale) -> list[dict[str, Any]]:
    """Per publisher: ratings attempted, valid, failed, and the failures by reason (the error's
    kind before its first colon: a refusal to answer is not JSON, so it counts as a
    ``parse_error``; "no value" = no error but no rating on the scale)."""
    valid = valid_ratings(ratings, scale)
    valid_keys = set(zip(valid["passage_id"], valid["rater"], strict=True))
    error = (
        ratings["error"].fillna("").astype(str)
        if "error" in ratings
        else pd.Series("", ratings.index)
    )
    reason = error.str.split(":", n=1).str[0].str.strip()
    keys = list(zip(ratings["passage_id"], ratings["rater"], strict=True))
    is_valid = pd.Series([k in valid_keys for k in keys], index=ratings.index)
    reason = reason.where(reason != "", "no value").where(~is_valid, "")
    frame = ratings.assign(reason=reason, valid=is_valid)
    rows = []
    for publisher, group in frame.groupby("publisher"):
        failed = group[~group["valid"]]
        rows.append(
            {
                "publisher": str(publisher),
                "attempted": len(group),
                "valid": int(group["valid"].sum()),
                "failed": len(failed),
                "failed_share": float(len(failed) / len(group)) if len(group) else 0.0,
                "by_reason": {str(k): int(v) for k, v in failed["reason"].value_counts().items()},
            }
        )
    return rows
