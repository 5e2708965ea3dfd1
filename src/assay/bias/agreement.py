"""Inter-rater agreement: Krippendorff's alpha with a bootstrap CI, per-rater alpha, pairwise
correlations and a Friedman test across publishers.

Alpha comes from the ``krippendorff`` package at the scale's level of measurement (interval,
nominal for binary labels, ordinal). The bootstrap resamples units (passages) with replacement
and recomputes alpha from the resampled value-count rows, which is the same computation.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy import stats

from assay.bias.aggregate import (
    Scale,
    failures_by_publisher,
    level_of_measurement,
    reliability_matrix,
    valid_ratings,
)
from assay.bias.concordance import (
    TOO_FEW_COMPLETE,
    complete_publisher_means,
    kendall_publishers,
)

TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "binary": ("true_biased", "expert_label"),
    "interval": ("true_score",),
    "ordinal": (),
}
"""Truth columns of the same construct as the scale's ratings, preferred first. A 0/1 label is
never compared with -2..+2 scores (nor the reverse): a different construct, not a truth."""
OTHER_CONSTRUCT: dict[str, tuple[str, ...]] = {
    "binary": ("true_score",),
    "interval": ("expert_label", "true_biased"),
    "ordinal": ("expert_label", "true_biased", "true_score"),
}
RATERS_OWN_MAJORITY = ("expert_label",)
"""Truth columns that are the majority vote of the study's own raters (BABE's experts): each
rater is compared with the majority of the OTHER raters instead, never with a vote it is in."""


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


MAX_PACKAGE_DOMAIN = 200
"""The krippendorff package builds units x values x values arrays; beyond this many distinct
values (continuous scores) interval alpha uses the equivalent closed form below."""


Level = Literal["nominal", "ordinal", "interval", "ratio"]


def _level(level: str) -> Level:
    return cast(Level, level)


def _interval_unit_sums(matrix: np.ndarray) -> np.ndarray:
    """Per pairable unit: (m, sum v, sum v^2) - interval alpha's sufficient statistics."""
    present = ~np.isnan(matrix)
    values = np.where(present, matrix, 0.0)
    sums = np.stack([present.sum(0), values.sum(0), (values**2).sum(0)], axis=1).astype(float)
    return sums[sums[:, 0] >= 2]


def _interval_alpha_from_sums(sums: np.ndarray) -> float:
    """alpha = 1 - D_o / D_e with the squared-difference metric, from unit sums.

    Within a unit, the sum over ordered pairs i != j of (v_i - v_j)^2 is 2(m S2 - S1^2); D_o
    weighs each unit by 1/(m - 1); D_e uses all pairable values pooled.
    """
    m, s1, s2 = sums[:, 0], sums[:, 1], sums[:, 2]
    n = m.sum()
    observed = (2 * (m * s2 - s1**2) / (m - 1)).sum() / n
    expected = 2 * (n * s2.sum() - s1.sum() ** 2) / (n * (n - 1))
    return float(1 - observed / expected) if expected > 0 else float("nan")


def krippendorff_alpha(matrix: np.ndarray, level: str) -> float:
    """Alpha of a raters x units matrix (NaN = missing), from the krippendorff package.

    Continuous interval data with more than MAX_PACKAGE_DOMAIN distinct values uses the
    closed form (same definition; the package would need units x V x V memory).
    """
    import krippendorff

    if level == "interval" and np.unique(matrix[~np.isnan(matrix)]).size > MAX_PACKAGE_DOMAIN:
        return _interval_alpha_from_sums(_interval_unit_sums(matrix))
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=_level(level)))


def _value_counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units x values counts for the pairable units (>= 2 ratings) and the value domain."""
    domain = np.unique(matrix[~np.isnan(matrix)])
    counts = np.stack([(matrix == v).sum(axis=0) for v in domain], axis=1)
    pairable = counts.sum(axis=1) >= 2
    return counts[pairable], domain


def bootstrap_alpha(
    matrix: np.ndarray, level: str, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict[str, Any]:
    """Percentile bootstrap CI of alpha, resampling pairable units with replacement."""
    import krippendorff

    rng = np.random.default_rng(seed)
    estimates = np.empty(n_boot)
    if level == "interval":  # the closed form: same alpha, ~100x faster per resample
        sums = _interval_unit_sums(matrix)
        for b in range(n_boot):
            estimates[b] = _interval_alpha_from_sums(sums[rng.integers(0, len(sums), len(sums))])
    else:
        counts, domain = _value_counts(matrix)
        for b in range(n_boot):
            rows = counts[rng.integers(0, len(counts), len(counts))]
            estimates[b] = krippendorff.alpha(
                value_counts=rows, value_domain=domain, level_of_measurement=_level(level)
            )
    estimates = estimates[np.isfinite(estimates)]
    tail = (1 - ci) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail]) if len(estimates) else (np.nan,) * 2
    return {
        "ci_low": _finite(low),
        "ci_high": _finite(high),
        "ci": ci,
        "n_boot": n_boot,
        "bootstrap_se": _finite(float(np.std(estimates, ddof=1))) if len(estimates) > 1 else None,
        "resampled": "units (passages) with >= 2 ratings, with replacement",
    }


def _consensus(others: pd.DataFrame, scale: Scale) -> pd.Series:
    """Leave-one-out consensus of the other raters per unit (NaN when undecided)."""
    if scale == "interval":
        return others.mean(axis=0)
    if scale == "ordinal":
        return others.quantile(0.5, axis=0, interpolation="lower")
    share = others.mean(axis=0)
    return share.where(share != 0.5).round()


def _pair_alpha(a: pd.Series, b: pd.Series, level: str) -> tuple[float | None, int]:
    pair = pd.concat([a, b], axis=1).dropna()
    if len(pair) < 2 or np.unique(pair.to_numpy()).size < 2:
        return None, len(pair)  # alpha is undefined without at least two distinct values
    return _finite(krippendorff_alpha(pair.to_numpy(float).T, level)), len(pair)


def per_rater_alpha(
    matrix: pd.DataFrame,
    scale: Scale,
    truth: pd.Series | None = None,
    *,
    truth_is_own_majority: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each rater against the others' consensus and, when given, against the truth labels
    (``truth_is_own_majority``: the truth is the raters' majority vote, so each rater is
    compared with the leave-one-out majority of the others wherever the truth is known)."""
    level = level_of_measurement(scale)
    result: dict[str, dict[str, Any]] = {}
    for rater in matrix.index:
        others = matrix.drop(index=rater)
        entry: dict[str, Any] = {"n_rated": int(matrix.loc[rater].notna().sum())}
        consensus = _consensus(others, scale) if len(others) else None
        if consensus is not None:
            alpha, n = _pair_alpha(matrix.loc[rater], consensus, level)
            entry.update(alpha_vs_others=alpha, n_vs_others=n)
        if truth is not None:
            target = truth.reindex(matrix.columns)
            if truth_is_own_majority:
                target = consensus.where(target.notna()) if consensus is not None else None
            if target is not None:
                alpha, n = _pair_alpha(matrix.loc[rater], target, level)
                entry.update(alpha_vs_truth=alpha, n_vs_truth=n)
        result[str(rater)] = entry
    return result


def pairwise(matrix: pd.DataFrame) -> list[dict[str, Any]]:
    """Pearson, Spearman and RMSE for every pair of raters over the passages both rated."""
    rows = []
    for a, b in combinations(matrix.index, 2):
        pair = matrix.loc[[a, b]].T.dropna()
        entry: dict[str, Any] = {"rater_a": str(a), "rater_b": str(b), "n": len(pair)}
        x, y = pair[a].to_numpy(), pair[b].to_numpy()
        varied = len(pair) > 2 and x.std() > 0 and y.std() > 0
        entry["pearson"] = _finite(stats.pearsonr(x, y)[0]) if varied else None
        entry["spearman"] = _finite(stats.spearmanr(x, y)[0]) if varied else None
        entry["rmse"] = _finite(float(np.sqrt(np.mean((x - y) ** 2)))) if len(pair) else None
        rows.append(entry)
    return rows


def friedman_publishers(valid: pd.DataFrame) -> dict[str, Any]:
    """Friedman test: raters are blocks, publishers are treatments, values are a rater's mean
    rating of a publisher's passages. Asks whether raters rank publishers consistently apart.
    Raters that did not rate every publisher are left out."""
    complete, left_out = complete_publisher_means(valid)
    base = {"blocks": "raters", "treatments": "publishers", "values": "rater mean per publisher"}
    if complete is None:
        return {**base, "statistic": None, "p_value": None, "skipped": TOO_FEW_COMPLETE}
    statistic, p_value = stats.friedmanchisquare(*(complete[c] for c in complete.columns))
    return {
        **base,
        "statistic": _finite(statistic),
        "p_value": _finite(p_value),
        "n_raters": int(complete.shape[0]),
        "n_publishers": int(complete.shape[1]),
        "raters_left_out": left_out,
    }


def truth_notes(passages: pd.DataFrame | None, scale: Scale, column: str) -> list[str]:
    """What the truth comparison did and did not do, in words for the report."""
    notes = []
    present = set(passages.columns) if passages is not None else set()
    for other in OTHER_CONSTRUCT[scale]:
        if other in present and passages is not None and passages[other].notna().any():
            notes.append(
                f"{other} not used as truth: it measures another construct than {scale} "
                "ratings (a 0/1 label vs a -2..+2 score are not comparable)"
            )
    if column in RATERS_OWN_MAJORITY:
        notes.append(
            f"{column} is the majority vote of these raters, so each rater is compared with the "
            "majority of the OTHER raters (leave-one-out; ties left out) on the units that "
            f"have {column}"
        )
    return notes


def truth_series(passages: pd.DataFrame | None, scale: Scale) -> tuple[pd.Series | None, str]:
    """The per-passage truth column of the scale's construct, if the corpus has one."""
    if passages is None:
        return None, ""
    for column in TRUTH_COLUMNS[scale]:
        if column in passages and passages[column].notna().any():
            series = pd.to_numeric(passages[column], errors="coerce").astype(float)
            return pd.Series(series.to_numpy(), index=passages["passage_id"].astype(str)), column
    return None, ""


def agreement_report(
    ratings: pd.DataFrame,
    scale: Scale,
    *,
    passages: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything agreement.json holds."""
    valid = valid_ratings(ratings, scale)
    matrix = reliability_matrix(valid)
    level = level_of_measurement(scale)
    truth, truth_column = truth_series(passages, scale)
    alpha = krippendorff_alpha(matrix.to_numpy(float), level)
    return {
        "scale": scale,
        "level_of_measurement": level,
        "n_raters": int(matrix.shape[0]),
        "n_units": int(matrix.shape[1]),
        "n_pairable_units": int((matrix.notna().sum(axis=0) >= 2).sum()),
        "n_valid_ratings": len(valid),
        "n_failed_ratings": int(len(ratings) - len(valid)),
        "alpha": _finite(alpha),
        **bootstrap_alpha(matrix.to_numpy(float), level, n_boot=n_boot, seed=seed),
        "truth_column": truth_column or None,
        "truth_notes": truth_notes(passages, scale, truth_column),
        "per_rater": per_rater_alpha(
            matrix, scale, truth, truth_is_own_majority=truth_column in RATERS_OWN_MAJORITY
        ),
        "pairwise": pairwise(matrix),
        "kendall_w": kendall_publishers(valid, seed=seed),
        "friedman": {
            **friedman_publishers(valid),
            "note": "asymptotic chi-square; with few raters its p cannot get small (3 raters "
            "x 5 publishers in perfect agreement: p = 0.0174); see kendall_w for the exact or "
            "permutation p",
        },
        "failures_by_publisher": failures_by_publisher(ratings, scale),
    }
