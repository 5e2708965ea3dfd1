"""Fit the publisher-effects model to a study's ratings: prepare, build, sample, check, and add
the draws the sampler did not make (collapsed effects, prior and posterior predictive)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.bias.aggregate import Scale
from assay.bias.collapsed import collapsed_effect_draws
from assay.bias.design import ModelData, prepare
from assay.bias.diagnostics import Diagnostics, diagnose
from assay.bias.likelihood import PUBLISHER_PRIOR_SD
from assay.bias.logit_direct import check_quadrature
from assay.bias.models import build_model, collapses_effects
from assay.bias.predictive import add_predictive
from assay.bias.sampling import BayesConfig, sample_robustly, uses_kernel
from assay.obs.logging import get_logger

log = get_logger(__name__)

HDI_PROB = 0.95


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
    add_predictive(idata, model, data, draws=config.predictive_draws, seed=config.seed)
    finished = time.perf_counter()
    diagnostics = diagnose(idata)
    if data.scale != "interval" and config.marginalise:
        check_quadrature(idata, data, diagnostics, gauss_hermite_rule=not uses_kernel(data, config))
    diagnostics.attempts = attempts
    compile_s = float(idata.attrs.get("compile_s", 0.0))
    timings = {
        "compile_s": compile_s,
        "sampling_s": sampled - started - compile_s,
        "predictive_s": finished - sampled,
    }
    log.info("bayes.fit", scale=scale, passed=diagnostics.passed, runs=len(attempts), **timings)
    return FitResult(idata=idata, data=data, diagnostics=diagnostics, timings=timings)
