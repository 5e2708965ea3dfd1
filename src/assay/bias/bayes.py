"""A PyMC hierarchical model of publisher effects, fitted with nutpie and checked
(``assay.bias.diagnostics``).

The model (named coords and dims) for a rating ``y`` of passage ``p`` by rater ``r``::

    theta_p = publisher_effect[pub(p)] + textbook_effect[tb(p)] + passage_sd * z_p
    interval:  y ~ Normal(theta_p + rater_offset[r], rater_scale[r])
    binary:    y ~ Bernoulli(logit = (theta_p + rater_offset[r]) / rater_scale[r])
    ordinal:   y ~ OrderedLogistic((theta_p + rater_offset[r]) / rater_scale[r],
                                   cutpoints / rater_scale[r])

Identification: rater offsets sum to zero (ZeroSumNormal), so a publisher effect is the
publisher's mean as the *average rater* sees it, and there is no separate intercept to trade
off against the publisher effects. On the logit scales the rater scales are relative (log
scales sum to zero); in the ordinal model the cutpoints carry the overall level, so publisher
effects sum to zero there as well.

Parameterisation follows the information each level gets (``assay.bias.likelihood``):

- interval scale: the model is linear-Gaussian, so passage, textbook *and* publisher effects
  are integrated out analytically and the sampler sees only the two standard deviations and
  the rater parameters - no funnel couples group effects to their scales, however few
  passages a textbook or textbooks a publisher has. The effects are drawn afterwards from
  their exact conditional posteriors, one per posterior draw.
- binary and ordinal scales: passage effects are integrated out by quadrature; textbook effects
  are sampled, non-centred where textbooks are sparsely informed (few ratings per textbook, the
  usual case for 0/1 votes) and centred where every textbook is well informed.

Sampling adapts to the design (``target_accept_for``) and, as a last line, a fit that fails
its diagnostics is re-run once at a higher target acceptance with twice the draws before they
are declared failed (``sample_robustly``); both runs are recorded in the diagnostics'
``attempts``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.bias import predictive
from assay.bias.aggregate import Scale
from assay.bias.design import NO_TEXTBOOK, ModelData, dense, prepare
from assay.bias.diagnostics import Diagnostics, DiagnosticsError, diagnose
from assay.bias.likelihood import (
    PUBLISHER_PRIOR_SD,
    Nesting,
    collapsed_effect_draws,
    collapsed_normal_logp,
    node_loglik,
    quadrature,
    signatures,
)
from assay.obs.logging import get_logger

log = get_logger(__name__)

HDI_PROB = 0.95
RETRY_TARGET_ACCEPT = 0.99
SPARSE_TEXTBOOKS_PER_PUBLISHER = 4
CENTRED_MIN_RATINGS_PER_TEXTBOOK = 60
"""Textbooks are centred on the logit scales only when each has at least this many ratings."""

__all__ = [
    "NO_TEXTBOOK",
    "BayesConfig",
    "DiagnosticsError",
    "FitResult",
    "ModelData",
    "build_model",
    "diagnose",
    "fit",
    "prepare",
    "sample",
]


@dataclass(frozen=True)
class BayesConfig:
    """How to fit: chains, draws, sampler and seed.

    ``target_accept`` None adapts it to the design (``target_accept_for``); ``retry_failed``
    re-runs a fit that fails its diagnostics once at ``RETRY_TARGET_ACCEPT`` with twice the
    warm-up and draws.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    seed: int = 42
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    target_accept: float | None = None
    marginalise: bool = True
    predictive_draws: int = 100
    retry_failed: bool = True


def collapses_effects(data: ModelData, marginalise: bool = True) -> bool:
    """Are all group effects integrated out analytically (interval scale, marginalised)?"""
    return marginalise and data.scale == "interval"


def centred_textbooks(data: ModelData) -> bool:
    """Sample textbook effects centred only when every textbook holds many ratings."""
    if data.passage_textbook is None:
        return False
    per_textbook = np.bincount(data.passage_textbook[data.obs_passage])
    return bool(per_textbook.min() >= CENTRED_MIN_RATINGS_PER_TEXTBOOK)


def target_accept_for(data: ModelData) -> float:
    """NUTS target acceptance for the design: 0.95 where publishers have fewer than
    ``SPARSE_TEXTBOOKS_PER_PUBLISHER`` textbooks (textbook_sd is then weakly identified and
    its tails need smaller steps), 0.9 otherwise."""
    if data.textbooks is None:
        return 0.9
    sparse = len(data.textbooks) < SPARSE_TEXTBOOKS_PER_PUBLISHER * len(data.publishers)
    return 0.95 if sparse else 0.9


def _publisher_prior(data: ModelData) -> Any:
    import pymc as pm

    prior_sd = PUBLISHER_PRIOR_SD[data.scale]
    if data.scale == "ordinal":
        return pm.ZeroSumNormal("publisher_effect", sigma=prior_sd, dims="publisher")
    return pm.Normal("publisher_effect", 0.0, prior_sd, dims="publisher")


def _sampled_textbook_effect(data: ModelData, textbook_sd: Any) -> Any:
    import pymc as pm

    if centred_textbooks(data):
        return pm.Normal("textbook_effect", 0.0, textbook_sd, dims="textbook")
    textbook_z = pm.Normal("textbook_z", 0.0, 1.0, dims="textbook")
    return pm.Deterministic("textbook_effect", textbook_sd * textbook_z, dims="textbook")


def _rater_scale(data: ModelData) -> Any:
    import pymc as pm

    if data.scale == "interval":
        return pm.LogNormal("rater_scale", mu=math.log(0.4), sigma=0.8, dims="rater")
    log_scale = pm.ZeroSumNormal("rater_log_scale", sigma=0.5, dims="rater")
    return pm.Deterministic("rater_scale", pm.math.exp(log_scale), dims="rater")


def _cutpoints(data: ModelData) -> Any:
    import pymc as pm

    if data.scale != "ordinal":
        return None
    assert data.levels is not None
    k = len(data.levels)
    return pm.Normal(
        "cutpoints",
        mu=np.linspace(-2, 2, k - 1),
        sigma=2.0,
        transform=pm.distributions.transforms.ordered,
        initval=np.linspace(-2, 2, k - 1),
        dims="cutpoint",
    )


def _quadrature_loglik(
    data: ModelData, passage_mean: Any, passage_sd: Any, offset: Any, scale: Any, cut: Any
) -> Any:
    import pymc as pm

    sig = signatures(data)
    _, log_weights = quadrature()
    n_levels = 0 if data.levels is None else len(data.levels)
    per_node = node_loglik(
        sig, data.scale, passage_mean, passage_sd, offset, scale, cut, n_levels=n_levels
    )
    return (sig.counts * pm.math.logsumexp(per_node + log_weights, axis=1).flatten()).sum()


def _observed_likelihood(
    data: ModelData, passage_mean: Any, passage_sd: Any, offset: Any, scale: Any, cut: Any
) -> None:
    """One non-centred parameter per passage and the ratings as observed variables."""
    import pymc as pm

    passage_z = pm.Normal("passage_z", 0.0, 1.0, dims="passage")
    theta = passage_mean + passage_sd * passage_z
    latent = theta[data.obs_passage] + offset[data.obs_rater]
    rating_scale = scale[data.obs_rater]
    if data.scale == "interval":
        pm.Normal("y", mu=latent, sigma=rating_scale, observed=data.y, dims="obs")
    elif data.scale == "binary":
        pm.Bernoulli("y", logit_p=latent / rating_scale, observed=data.y, dims="obs")
    else:
        pm.OrderedLogistic(
            "y",
            eta=latent / rating_scale,
            cutpoints=cut[None, :] / rating_scale[:, None],
            observed=data.y.astype(int),
            dims="obs",
        )


def build_model(data: ModelData, *, marginalise: bool = True) -> Any:
    """The PyMC model for the study's scale (see the module docstring).

    ``marginalise`` integrates effects out: on the interval scale exactly, every level
    (passages, textbooks, publishers; their draws are added after sampling); on the logit
    scales the passage effects, by Gauss-Hermite quadrature over grouped passage signatures.
    ``marginalise=False`` keeps one non-centred parameter per passage (and per textbook).
    """
    import pymc as pm

    interval = data.scale == "interval"
    collapsed = collapses_effects(data, marginalise)
    with pm.Model(coords=data.coords) as model:
        textbook_sd = None
        if data.textbooks is not None:
            textbook_sd = pm.HalfNormal("textbook_sd", 0.5 if interval else 1.0)
        passage_sd = pm.HalfNormal("passage_sd", 1.0)
        offset = pm.ZeroSumNormal("rater_offset", sigma=0.5 if interval else 1.0, dims="rater")
        scale = _rater_scale(data)
        if collapsed:
            values, mask = dense(data)
            loglik = collapsed_normal_logp(
                values, mask, Nesting.of(data), passage_sd, textbook_sd,
                PUBLISHER_PRIOR_SD["interval"], offset, scale,
            )  # fmt: skip
            pm.Potential("ratings_marginal_loglik", loglik)
            return model
        passage_mean = _publisher_prior(data)[data.passage_publisher]
        if data.textbooks is not None:
            textbook_effect = _sampled_textbook_effect(data, textbook_sd)
            passage_mean = passage_mean + textbook_effect[data.passage_textbook]
        cut = _cutpoints(data)
        if not marginalise:
            _observed_likelihood(data, passage_mean, passage_sd, offset, scale, cut)
            return model
        loglik = _quadrature_loglik(data, passage_mean, passage_sd, offset, scale, cut)
        pm.Potential("ratings_marginal_loglik", loglik)
    return model


def compile_model(model: Any, config: BayesConfig) -> tuple[Any, float]:
    """The sampler-ready model (nutpie compiles it; PyMC's NUTS takes the model) and the
    seconds compilation took."""
    if config.sampler != "nutpie":
        return model, 0.0
    import nutpie

    started = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    return compiled, time.perf_counter() - started


def sample(
    model: Any,
    config: BayesConfig,
    *,
    progress: bool = False,
    target_accept: float | None = None,
    compiled: Any = None,
) -> Any:
    """Draw from the posterior with nutpie (default) or PyMC's NUTS, seeded.

    ``compiled`` reuses a ``compile_model`` result; the InferenceData's ``compile_s`` attribute
    says how long compiling took (0 when reused).
    """
    import os

    import pymc as pm

    cores = config.cores or min(config.chains, os.cpu_count() or 1)
    accept = target_accept or config.target_accept or 0.9
    if config.sampler == "nutpie":
        import nutpie

        compile_s = 0.0
        if compiled is None:
            compiled, compile_s = compile_model(model, config)
        idata = nutpie.sample(
            compiled,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            seed=config.seed,
            target_accept=accept,
            progress_bar=progress,
        )
        idata.attrs["compile_s"] = compile_s  # sampling time = total minus this
        return idata
    with model:
        return pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            random_seed=config.seed,
            target_accept=accept,
            progressbar=progress,
            compute_convergence_checks=False,
        )


def sample_robustly(
    model: Any, data: ModelData, config: BayesConfig, *, progress: bool = False
) -> tuple[Any, list[dict[str, Any]]]:
    """Sample at the design's target acceptance; if that run fails its diagnostics (divergent
    transitions, R-hat, ESS or BFMI; and ``config.retry_failed``), re-run once, same seed, at
    ``RETRY_TARGET_ACCEPT`` with twice the warm-up and draws, and keep the second run whatever
    it shows - its diagnostics then decide. Smaller steps answer divergences; longer chains
    answer a slowly mixing scale parameter (textbook_sd on the binary scale), whose R-hat from
    1,000 draws per chain can sit just above 1.01. Returns the posterior and one record per run.
    """
    compiled, compile_s = compile_model(model, config)
    accept = config.target_accept or target_accept_for(data)
    attempts: list[dict[str, Any]] = []
    while True:
        started = time.perf_counter()
        idata = sample(model, config, progress=progress, target_accept=accept, compiled=compiled)
        checked = diagnose(idata)
        attempts.append(
            {
                "target_accept": accept,
                "draws": config.draws,
                "tune": config.tune,
                "divergences": checked.divergences,
                "rhat_max": round(checked.rhat_max, 4),
                "failures": checked.failures,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        if checked.passed or not config.retry_failed or len(attempts) > 1:
            break
        log.warning("bayes.retry", failures=checked.failures, target_accept=RETRY_TARGET_ACCEPT)
        accept = max(accept, RETRY_TARGET_ACCEPT)
        config = replace(config, draws=2 * config.draws, tune=2 * config.tune)
    idata.attrs["compile_s"] = compile_s
    return idata, attempts


def add_collapsed_effects(idata: Any, data: ModelData, seed: int) -> None:
    """Add ``publisher_effect`` (and ``textbook_effect``) to the posterior of a model that
    integrated them out: one draw from their exact conditional posterior per posterior draw
    of the sampled parameters."""
    import xarray as xr

    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    names = ("passage_sd", "textbook_sd", "rater_offset", "rater_scale")
    params = {
        name: posterior[name].to_numpy().reshape(chains * draws, *posterior[name].shape[2:])
        for name in names
        if name in posterior
    }
    rng = np.random.default_rng(seed + 3)
    prior_sd = PUBLISHER_PRIOR_SD["interval"]
    dims = {"publisher_effect": "publisher", "textbook_effect": "textbook"}
    for name, effects in collapsed_effect_draws(data, params, prior_sd, rng).items():
        dim = dims[name]
        posterior[name] = xr.DataArray(
            effects.reshape(chains, draws, -1),
            dims=("chain", "draw", dim),
            coords={"chain": posterior["chain"], "draw": posterior["draw"], dim: data.coords[dim]},
        )


@dataclass
class FitResult:
    idata: Any
    data: ModelData
    diagnostics: Diagnostics
    timings: dict[str, float]


def fit(
    ratings: pd.DataFrame,
    scale: Scale,
    config: BayesConfig | None = None,
    *,
    progress: bool = False,
) -> FitResult:
    """Prepare, build, sample (``sample_robustly``), check and add the derived draws: textbook
    effects where they were integrated out, prior and posterior predictive draws."""
    config = config or BayesConfig()
    data = prepare(ratings, scale)
    model = build_model(data, marginalise=config.marginalise)
    started = time.perf_counter()
    idata, attempts = sample_robustly(model, data, config, progress=progress)
    sampled = time.perf_counter()
    if collapses_effects(data, config.marginalise):
        add_collapsed_effects(idata, data, config.seed)
    predictive.add_predictive(idata, model, data, draws=config.predictive_draws, seed=config.seed)
    finished = time.perf_counter()
    diagnostics = diagnose(idata)
    diagnostics.attempts = attempts
    compile_s = float(idata.attrs.get("compile_s", 0.0))
    timings = {
        "compile_s": compile_s,
        "sampling_s": sampled - started - compile_s,
        "predictive_s": finished - sampled,
    }
    log.info("bayes.fit", scale=scale, passed=diagnostics.passed, runs=len(attempts), **timings)
    return FitResult(idata=idata, data=data, diagnostics=diagnostics, timings=timings)
