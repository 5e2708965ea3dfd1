"""Do the raters rank the publishers alike? Kendall's W with an exact or permutation p-value.

Raters are the judges, publishers the objects; a rater's value for a publisher is the mean of
the rater's ratings of its passages. W = 12 S / (m^2 (n^3 - n) - m T) with rank ties averaged
(T: the tie correction). The Friedman chi-square p-value this replaces is asymptotic and, with
few raters, cannot get small: 3 raters in perfect agreement on 5 publishers give chi-square 12,
p = 0.0174, however clear the agreement. Under the null each rater's ranking is an independent
uniform permutation; p is the share of such rankings with W at least the observed one, counted
exactly when (n!)^(m-1) <= ``EXACT_LIMIT``, else from ``N_PERMUTATIONS`` random ones.
"""

from __future__ import annotations

import math
from itertools import permutations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

EXACT_LIMIT = 200_000
N_PERMUTATIONS = 20_000


def _w_from_rank_sums(sums: np.ndarray, m: int, n: int, ties: float) -> np.ndarray:
    spread = ((sums - sums.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    return np.asarray(12 * spread / (m**2 * (n**3 - n) - m * ties))


def _ties(ranks: np.ndarray) -> float:
    total = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        total += float((counts**3 - counts).sum())
    return total


def kendall_w(values: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """W and its p-value for a judges x objects matrix (no missing values)."""
    ranks = stats.rankdata(values, axis=1)
    m, n = ranks.shape
    ties = _ties(ranks)
    if m**2 * (n**3 - n) - m * ties <= 0:
        return {"w": None, "p_value": None, "p_method": "undefined (every rater tied all)"}
    w = float(_w_from_rank_sums(ranks.sum(axis=0), m, n, ties))
    if math.factorial(n) ** (m - 1) <= EXACT_LIMIT:
        sums = ranks[:1]
        for row in ranks[1:]:
            orderings = np.array(list(permutations(row)))
            sums = (sums[:, None, :] + orderings[None, :, :]).reshape(-1, n)
        null = _w_from_rank_sums(sums, m, n, ties)
        p = float((null >= w - 1e-12).mean())
        method = f"exact ({len(null)} rankings of the other raters)"
    else:
        rng = np.random.default_rng(seed)
        shuffled = rng.permuted(np.broadcast_to(ranks, (N_PERMUTATIONS, m, n)).copy(), axis=2)
        null = _w_from_rank_sums(shuffled.sum(axis=1), m, n, ties)
        p = float((1 + (null >= w - 1e-12).sum()) / (N_PERMUTATIONS + 1))
        method = f"permutation ({N_PERMUTATIONS} random rankings per rater, seed {seed})"
    return {"w": w, "p_value": p, "p_method": method}


TOO_FEW_COMPLETE = "needs >= 3 publishers and >= 2 raters who rated all of them"


def complete_publisher_means(valid: pd.DataFrame) -> tuple[pd.DataFrame | None, list[str]]:
    """Each rater's mean rating per publisher, raters who rated every publisher only (None when
    fewer than 3 publishers or 2 such raters), and the raters left out."""
    means = valid.pivot_table(index="rater", columns="publisher", values="value", aggfunc="mean")
    complete = means.dropna(axis=0)
    left_out = sorted(set(means.index) - set(complete.index))
    if complete.shape[1] < 3 or complete.shape[0] < 2:
        return None, left_out
    return complete, left_out


def kendall_publishers(valid: pd.DataFrame, *, seed: int = 0) -> dict[str, Any]:
    """Kendall's W of the raters' publisher means (raters who rated every publisher)."""
    complete, left_out = complete_publisher_means(valid)
    base = {"judges": "raters", "objects": "publishers", "values": "rater mean per publisher"}
    if complete is None:
        return {**base, "w": None, "p_value": None, "skipped": TOO_FEW_COMPLETE}
    return {
        **base,
        **kendall_w(complete.to_numpy(float), seed=seed),
        "n_raters": int(complete.shape[0]),
        "n_publishers": int(complete.shape[1]),
        "raters_left_out": left_out,
    }
