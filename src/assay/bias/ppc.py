"""Posterior predictive checks with power: replicate NEW passages, check what is not fitted.

The older check (``assay.bias.predictive.check_statistics``) conditions each passage on its own
ratings and compares means the model fits directly, so its p-values sit near 0.5 whatever the
data. Here every replication draws new textbook effects (from the posterior ``textbook_sd``) and
new passage effects (from ``passage_sd``) for the same design - publishers, textbooks, which
rater rates which passage - and new ratings from the raters' posterior offsets and scales. The
statistics are ones the model does not fit directly:

- share of scores at the scale's ends (interval: within ``END_TOLERANCE`` of +/-2; ordinal:
  lowest or highest category) - sensitive to clipping and to heavy tails
- each rater's spread (sd of the rater's ratings) - the rater scale is fitted, but only jointly
  with the passage spread
- rater-by-publisher means, and their interaction (the spread of the cell means left after
  removing rater and publisher means) - the model has no interaction term
- within-passage spread (mean sd of a passage's ratings)
- binary: votes per sentence (share of unanimous sentences, spread of the biased share)

p = P(T_rep > T_obs) + P(T_rep = T_obs)/2. About 20 statistics are checked at once, so a flag
needs the Holm-adjusted two-sided p (2 min(p, 1 - p)) below 0.05: the chance of any flag on a
well-specified model stays at most 5% (Holm holds under any dependence between the statistics).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from assay.bias.design import ModelData
from assay.bias.predictive import in_draw_chunks, replicate
from assay.stats import holm

END_TOLERANCE = 0.01
"""Interval scores within this of +/-2 count as 'at the end' (the ratings' resolution)."""
FAMILY_ALPHA = 0.05
MULTIPLICITY = (
    "Holm over all statistics of the two-sided p = 2 min(p, 1 - p); flagged when the "
    f"Holm-adjusted p < {FAMILY_ALPHA} (at most a {FAMILY_ALPHA:.0%} chance of any flag if the "
    "model is right)"
)
PPC_DRAWS = 400
KEPT_SAMPLES = 200
_NEW_PASSAGE_PARAMS = (
    "publisher_effect",
    "textbook_sd",
    "passage_sd",
    "rater_offset",
    "rater_scale",
    "cutpoints",
)


def posterior_params(idata: Any, n: int = PPC_DRAWS) -> dict[str, np.ndarray]:
    """Evenly spaced posterior draws of the parameters a new-passage replication needs (no
    textbook or passage effects: those are drawn anew)."""
    stacked = idata.posterior.stack(sample=("chain", "draw"))
    total = stacked.sizes["sample"]
    take = np.linspace(0, total - 1, min(n, total)).astype(int)
    return {
        name: stacked[name].transpose("sample", ...).to_numpy()[take]
        for name in _NEW_PASSAGE_PARAMS
        if name in stacked
    }


def replicate_new_passages(
    params: dict[str, np.ndarray], data: ModelData, rng: np.random.Generator
) -> np.ndarray:
    """Draws x observations of ratings for new textbooks and passages of the same design."""
    return replicate(params, data, rng, conditional=False)


def _group_means(y: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, Any]:
    """Mean of y (draws x obs) per group, and the obs x groups indicator used."""
    indicator = sparse.csr_matrix(
        (np.ones(len(groups)), (np.arange(len(groups)), groups)), shape=(len(groups), n_groups)
    )
    counts = np.asarray(indicator.sum(axis=0)).ravel()
    return np.asarray(indicator.T.dot(y.T)).T / np.maximum(counts, 1), indicator


def _interaction(cells: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean square of rater x publisher cell means after removing row and column means
    (complete cells only; draws x raters x publishers)."""
    rows = present.all(axis=1)
    table = cells[:, rows][:, :, present[rows].all(axis=0)]
    if table.shape[1] < 2 or table.shape[2] < 2:
        return np.full(cells.shape[0], np.nan)
    residual = (
        table
        - table.mean(axis=2, keepdims=True)
        - table.mean(axis=1, keepdims=True)
        + table.mean(axis=(1, 2), keepdims=True)
    )
    return np.asarray((residual**2).mean(axis=(1, 2)))


def statistics(y: np.ndarray, data: ModelData) -> dict[str, np.ndarray]:
    """The checked statistics of y (draws x obs, the data's coding), one array per name,
    computed a chunk of draws at a time (each statistic is per draw) to bound the float64
    temporaries."""
    return in_draw_chunks(np.atleast_2d(y), lambda rows: _statistics(rows, data))


def _statistics(y: np.ndarray, data: ModelData) -> dict[str, np.ndarray]:
    y = np.asarray(y, dtype=float)
    out: dict[str, np.ndarray] = {}
    if data.scale == "interval":
        out["share at +/-2"] = (np.abs(np.abs(y) - 2) <= END_TOLERANCE).mean(axis=1)
    elif data.scale == "ordinal":
        assert data.levels is not None
        out["share at the end categories"] = ((y == 0) | (y == len(data.levels) - 1)).mean(axis=1)
    n_raters, n_publishers = len(data.raters), len(data.publishers)
    rater_mean, _ = _group_means(y, data.obs_rater, n_raters)
    rater_square, _ = _group_means(y**2, data.obs_rater, n_raters)
    spread = np.sqrt(np.maximum(rater_square - rater_mean**2, 0))
    for i, rater in enumerate(data.raters):
        out[f"spread[{rater}]"] = spread[:, i]
    publisher = data.passage_publisher[data.obs_passage]
    cell = data.obs_rater * n_publishers + publisher
    cells, indicator = _group_means(y, cell, n_raters * n_publishers)
    present = (np.asarray(indicator.sum(axis=0)).ravel() > 0).reshape(n_raters, n_publishers)
    cells = cells.reshape(-1, n_raters, n_publishers)
    out["rater x publisher interaction"] = _interaction(cells, present)
    for i, rater in enumerate(data.raters):
        for j, name in enumerate(data.publishers):
            if present[i, j]:
                out[f"mean[{rater}, {name}]"] = cells[:, i, j]
    out.update(_per_passage(y, data))
    return out


def _per_passage(y: np.ndarray, data: ModelData) -> dict[str, np.ndarray]:
    n_passages = len(data.passages)
    mean, indicator = _group_means(y, data.obs_passage, n_passages)
    square, _ = _group_means(y**2, data.obs_passage, n_passages)
    counts = np.asarray(indicator.sum(axis=0)).ravel()
    rated = counts >= 2
    variance = np.maximum(square - mean**2, 0) * counts / np.maximum(counts - 1, 1)
    out = {"within-passage spread": np.sqrt(variance[:, rated]).mean(axis=1)}
    if data.scale == "binary":
        out["share of unanimous sentences"] = ((mean[:, rated] == 0) | (mean[:, rated] == 1)).mean(
            axis=1
        )
        out["sd of the biased share per sentence"] = mean[:, rated].std(axis=1)
    return out


def _p_value(replicated: np.ndarray, observed: float) -> float:
    return float((replicated > observed).mean() + 0.5 * (replicated == observed).mean())


def new_passage_checks(idata: Any, data: ModelData, *, seed: int = 0) -> dict[str, Any]:
    """Observed vs new-passage replicated statistics, with p-values and flags."""
    rng = np.random.default_rng(seed + 7)
    replicated = replicate_new_passages(posterior_params(idata), data, rng)
    observed_stats = statistics(data.y, data)
    replicated_stats = statistics(replicated, data)
    rows: dict[str, dict[str, Any]] = {}
    for name, observed in observed_stats.items():
        values = replicated_stats[name]
        values = values[np.isfinite(values)]
        if not np.isfinite(observed[0]) or not len(values):
            continue
        p = _p_value(values, float(observed[0]))
        rows[name] = {
            "observed": float(observed[0]),
            "replicated_mean": float(values.mean()),
            "replicated_94": [float(v) for v in np.percentile(values, [3, 97])],
            "p_value": p,
            "replicated_sample": [float(v) for v in values[:KEPT_SAMPLES]],
        }
    adjusted = holm([min(1.0, 2 * min(r["p_value"], 1 - r["p_value"])) for r in rows.values()])
    for row, p_holm in zip(rows.values(), adjusted, strict=True):
        row["p_holm"] = p_holm
        row["extreme"] = bool(p_holm < FAMILY_ALPHA)
    return {
        "replication": "new textbooks and passages drawn from the posterior hyperparameters, "
        "new ratings from the raters' posterior parameters; same design",
        "n_replications": int(replicated.shape[0]),
        "p_value": "P(T_rep > T_obs) + P(T_rep = T_obs)/2",
        "multiplicity": MULTIPLICITY,
        "statistics": rows,
        "extreme": sorted(k for k, v in rows.items() if v["extreme"]),
    }
