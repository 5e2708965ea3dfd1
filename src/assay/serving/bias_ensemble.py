"""The bias scorer's output tensors, free of KServe (so they can be tested in any process).

:func:`aggregate`: the per-passage summary of the raters that answered. Which raters are asked
(API keys, breakers, the daily budget) is ``assay.bias.rating.availability``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from assay.bias.rating.scorer import PassageScore

RATER_PREFIX = "score_"
BIASED_SHARE = 0.5  # share of answering raters that must flag a passage for biased = 1


def aggregate(rated: Sequence[PassageScore], raters: Sequence[str]) -> dict[str, np.ndarray]:
    """The output tensors (see the module docstring) for a batch of rated passages."""
    n = len(rated)
    scores = np.full((n, len(raters)), np.nan)
    flags = np.full((n, len(raters)), np.nan)
    confidences = np.full((n, len(raters)), np.nan)
    for row, passage in enumerate(rated):
        for col, rater in enumerate(raters):
            rating = passage.ratings.get(rater)
            if rating is not None:
                scores[row, col] = float(rating["score"])
                flags[row, col] = float(rating["biased"])
                confidences[row, col] = float(rating["confidence"])
    counts = np.sum(~np.isnan(scores), axis=1)
    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        mean = np.nanmean(scores, axis=1)
        std = np.where(counts >= 2, np.nanstd(scores, axis=1, ddof=1), np.nan)
        confidence = np.nanmean(confidences, axis=1)
        share = np.nanmean(flags, axis=1)
    biased = np.where(counts == 0, -1, (share >= BIASED_SHARE).astype(np.int64))
    arrays: dict[str, np.ndarray] = {
        "bias_score": mean.astype(np.float32),
        "score_std": std.astype(np.float32),
        "confidence": confidence.astype(np.float32),
        "biased": biased.astype(np.int64),
        "explanation": _explanations(rated, raters, scores, mean),
        "n_ratings": counts.astype(np.int64),
        "missing_raters": np.array(
            [",".join(r for r in raters if r in p.missing) for p in rated], dtype=object
        ),
    }
    for col, rater in enumerate(raters):
        arrays[RATER_PREFIX + rater] = scores[:, col].astype(np.float32)
    return arrays


@contextlib.contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def _explanations(
    rated: Sequence[PassageScore], raters: Sequence[str], scores: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    texts = []
    for row, passage in enumerate(rated):
        if np.isnan(mean[row]):
            texts.append("")
            continue
        col = int(np.nanargmin(np.abs(scores[row] - mean[row])))
        rater = raters[col]
        texts.append(f"{rater}: {passage.ratings[rater].get('explanation', '')}")
    return np.array(texts, dtype=object)


def missing_reasons(rated: Sequence[PassageScore]) -> dict[str, str]:
    """Each missing rater with the first reason it gave in this request."""
    reasons: dict[str, str] = {}
    for passage in rated:
        for rater, why in passage.missing.items():
            reasons.setdefault(rater, why)
    return reasons


def v1_rows(arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The output tensors as one JSON object per passage (the v1 ``predictions``)."""

    def plain(value: Any) -> Any:
        if isinstance(value, float | np.floating):
            return None if np.isnan(value) else round(float(value), 6)
        return value.item() if isinstance(value, np.generic) else value

    n = len(arrays["bias_score"])
    return [{name: plain(array[row]) for name, array in arrays.items()} for row in range(n)]
