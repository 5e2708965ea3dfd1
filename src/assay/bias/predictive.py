"""Prior and posterior predictive draws for the publisher-effects model, and their checks.

Replicated ratings are generated in numpy from parameter draws with the model's own generative
story, so the interval model (whose passage effects are integrated out while sampling) gets
them too: its passage effects are drawn from their exact Normal conditional posterior.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from assay.bias.collapsed import draw_chunk
from assay.bias.design import ModelData
from assay.bias.likelihood import (
    PUBLISHER_PRIOR_SD,
    RatingPatterns,
    answer_loglik,
    group_first_passage,
    node_loglik,
    quadrature,
)


def _stacked(group: Any, names: list[str], take: np.ndarray) -> dict[str, np.ndarray]:
    stacked = group.stack(sample=("chain", "draw"))
    out = {}
    for name in names:
        if name in stacked:
            array = stacked[name].transpose("sample", ...).to_numpy()
            out[name] = array[take]
    return out


_PARAMS = [
    "publisher_effect",
    "textbook_effect",
    "textbook_sd",
    "passage_sd",
    "passage_z",
    "rater_offset",
    "rater_scale",
    "cutpoints",
]


def _group_effects(
    params: dict[str, np.ndarray], data: ModelData, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Publisher and textbook effects of each draw; drawn from their priors where the model
    integrated them out and the draws come from the prior (the posterior carries them)."""
    effects: dict[str, np.ndarray] = {
        k: params[k] for k in ("publisher_effect", "textbook_effect") if k in params
    }
    n = len(params["passage_sd"])
    if "publisher_effect" not in effects:
        sd = PUBLISHER_PRIOR_SD[data.scale]
        effects["publisher_effect"] = sd * rng.standard_normal((n, len(data.publishers)))
    if data.textbooks is not None and "textbook_effect" not in effects:
        shape = (n, len(data.textbooks))
        effects["textbook_effect"] = params["textbook_sd"][:, None] * rng.standard_normal(shape)
    return effects


def _passage_effects(
    params: dict[str, np.ndarray], data: ModelData, rng: np.random.Generator, conditional: bool
) -> np.ndarray:
    effects = _group_effects(params, data, rng)
    mean = effects["publisher_effect"][:, data.passage_publisher]
    if data.passage_textbook is not None and "textbook_effect" in effects:
        mean += effects["textbook_effect"][:, data.passage_textbook]
    sd = params["passage_sd"][:, None]
    if "passage_z" in params:
        return mean + sd * params["passage_z"]
    if not conditional:
        theta = rng.standard_normal(mean.shape)
        theta *= sd
        theta += mean
        return theta
    if data.scale != "interval":
        return _quadrature_conditional(params, data, rng, mean, sd)
    return _normal_conditional(params, data, rng, mean, sd)


def _normal_conditional(
    params: dict[str, np.ndarray],
    data: ModelData,
    rng: np.random.Generator,
    mean: np.ndarray,
    sd: np.ndarray,
) -> np.ndarray:
    """Passage effects from their exact conditional posterior in the Normal model, a draw at a
    time: no draws x ratings array, and the same numbers as drawing the noise all at once."""
    theta = np.empty_like(mean)
    for s in range(mean.shape[0]):
        weights = 1.0 / params["rater_scale"][s, data.obs_rater] ** 2
        corrected = data.y - params["rater_offset"][s, data.obs_rater]
        total_weight = np.bincount(data.obs_passage, weights, len(data.passages))
        weighted_sum = np.bincount(data.obs_passage, weights * corrected, len(data.passages))
        precision = 1.0 / sd[s] ** 2 + total_weight
        theta[s] = (mean[s] / sd[s] ** 2 + weighted_sum) / precision
        theta[s] += rng.standard_normal(len(data.passages)) / np.sqrt(precision)
    return theta


def _quadrature_conditional(
    params: dict[str, np.ndarray],
    data: ModelData,
    rng: np.random.Generator,
    mean: np.ndarray,
    sd: np.ndarray,
) -> np.ndarray:
    """Passage effects from their conditional posterior on the quadrature grid the model
    integrates over (a discrete approximation, good enough for predictive checks)."""
    import pytensor
    import pytensor.tensor as pt

    patterns = RatingPatterns.of(data)
    first = group_first_passage(data)
    nodes, log_weights = quadrature()
    mean_in, sd_in, offset_in = pt.vector("mean"), pt.scalar("sd"), pt.vector("offset")
    scale_in, cut_in = pt.vector("scale"), pt.vector("cutpoints")
    per_answer = answer_loglik(data.scale, mean_in, sd_in, offset_in, scale_in, cut_in)
    compiled = pytensor.function(
        [mean_in, sd_in, offset_in, scale_in, cut_in],
        node_loglik(patterns, per_answer),
        on_unused_input="ignore",
    )
    theta = np.empty_like(mean)
    for s in range(mean.shape[0]):
        cutpoints = params["cutpoints"][s] if "cutpoints" in params else np.zeros(1)
        per_node = compiled(
            mean[s, first], sd[s, 0], params["rater_offset"][s], params["rater_scale"][s], cutpoints
        )
        logits = per_node + log_weights
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
        u = rng.random(len(data.passages))
        chosen = (u[:, None] > cumulative[patterns.of_passage]).sum(axis=1)
        theta[s] = mean[s] + sd[s, 0] * nodes[np.minimum(chosen, len(nodes) - 1)]
    return theta


def replicate(
    params: dict[str, np.ndarray],
    data: ModelData,
    rng: np.random.Generator,
    *,
    conditional: bool,
    chunk: int | None = None,
) -> np.ndarray:
    """Replicated ratings, draws x observations, on the data's coding (0/1, category index;
    float32 on the interval scale), ``chunk`` draws at a time (None: ``draw_chunk``). The random
    stream is consumed in the same order whatever the chunk, so a seed gives the same
    replications."""
    theta = _passage_effects(params, data, rng, conditional)
    draws, observations = theta.shape[0], len(data.obs_passage)
    dtype = np.float32 if data.scale == "interval" else np.int8
    out = np.empty((draws, observations), dtype)
    step = chunk or draw_chunk(observations, most=draws)
    for start in range(0, draws, step):
        rows = slice(start, min(start + step, draws))
        rows_params = {name: values[rows] for name, values in params.items()}
        out[rows] = _replicate_rows(theta[rows], rows_params, data, rng)
    return out


def in_draw_chunks(
    y: np.ndarray, statistics_of: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-draw statistics of y (draws x observations), computed a chunk of draws at a time so
    that their float64 temporaries stay small; the same arrays as ``statistics_of(y)``."""
    step = draw_chunk(y.shape[1], most=len(y))
    chunks = [statistics_of(y[start : start + step]) for start in range(0, len(y), step)]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _replicate_rows(
    theta: np.ndarray, params: dict[str, Any], data: ModelData, rng: np.random.Generator
) -> np.ndarray:
    latent = theta[:, data.obs_passage]
    latent += params["rater_offset"][:, data.obs_rater]
    scale = params["rater_scale"][:, data.obs_rater]
    if data.scale == "interval":
        return latent + scale * rng.standard_normal(latent.shape)
    latent /= scale
    latent += rng.logistic(size=latent.shape)
    if data.scale == "binary":
        return latent > 0
    cut = params["cutpoints"]
    levels = np.zeros(latent.shape, np.int8)
    for c in range(cut.shape[1]):
        levels += latent > cut[:, c : c + 1] / scale
    return levels


def add_predictive(idata: Any, model: Any, data: ModelData, *, draws: int, seed: int) -> None:
    """Add prior, prior_predictive, posterior_predictive, observed_data and constant_data
    (``draws`` replications of each, seeded from ``seed``)."""
    import arviz as az
    import pymc as pm
    import xarray as xr

    rng = np.random.default_rng(seed + 1)
    n = draws
    with model, warnings.catch_warnings():
        # The Potential is the (marginal) likelihood, which prior sampling rightly ignores.
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = pm.sample_prior_predictive(draws=n, random_seed=seed + 2)
    prior_params = _stacked(prior.prior, _PARAMS, np.arange(n))
    total = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    take = np.linspace(0, total - 1, min(n, total)).astype(int)
    posterior_params = _stacked(idata.posterior, _PARAMS, take)
    obs = np.arange(len(data.y))

    def as_group(draws: np.ndarray) -> xr.Dataset:
        return xr.Dataset(
            {"y": (("chain", "draw", "obs"), draws[None])},
            coords={"chain": [0], "draw": np.arange(draws.shape[0]), "obs": obs},
        )

    groups = {
        "prior": prior.prior,
        "prior_predictive": as_group(replicate(prior_params, data, rng, conditional=False)),
        "posterior_predictive": as_group(replicate(posterior_params, data, rng, conditional=True)),
        "observed_data": xr.Dataset({"y": (("obs",), data.y)}, coords={"obs": obs}),
        "constant_data": xr.Dataset(
            {
                "obs_passage": (("obs",), data.obs_passage),
                "obs_rater": (("obs",), data.obs_rater),
                "obs_publisher": (("obs",), data.passage_publisher[data.obs_passage]),
            },
            coords={"obs": obs},
        ),
    }
    for name in groups:
        if name in idata.groups():
            del idata[name]
    idata.extend(az.InferenceData(**groups))


def check_statistics(idata: Any, publishers: list[str]) -> dict[str, Any]:
    """Posterior (and prior) predictive checks: observed vs replicated summary statistics.

    ``p_value`` is the share of replicated data sets whose statistic is at least the observed
    one; values near 0 or 1 flag misfit.
    """
    observed = idata.observed_data["y"].to_numpy().astype(float)
    publisher = idata.constant_data["obs_publisher"].to_numpy()

    def stats(y: np.ndarray) -> dict[str, np.ndarray]:
        out = {"mean": y.mean(axis=-1), "sd": y.std(axis=-1)}
        for j, name in enumerate(publishers):
            out[f"mean[{name}]"] = y[..., publisher == j].mean(axis=-1)
        return out

    observed_stats = stats(observed)
    result: dict[str, Any] = {}
    for group in ("posterior_predictive", "prior_predictive"):
        replicated = idata[group]["y"].to_numpy().reshape(-1, observed.size)
        rep_stats = in_draw_chunks(replicated, lambda rows: stats(rows.astype(float)))
        result[group] = {
            key: {
                "observed": float(observed_stats[key]),
                "replicated_mean": float(rep_stats[key].mean()),
                "replicated_94": [float(v) for v in np.percentile(rep_stats[key], [3, 97])],
                "p_value": float((rep_stats[key] >= observed_stats[key]).mean()),
            }
            for key in observed_stats
        }
    return result
