"""Drawing from a publisher-effects model: sampler settings, compilation, and a sampler run
that adapts to the design and retries a run that fails its diagnostics.

Sampling adapts to the design (``target_accept_for``) and, as a last line, a fit that fails
its diagnostics is re-run once at a higher target acceptance with twice the draws before they
are declared failed (``sample_robustly``); both runs are recorded in the diagnostics'
``attempts``. nutpie and PyMC are imported on first use: they are heavy and only a fit needs
them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from assay.bias.design import ModelData
from assay.bias.diagnostics import diagnose
from assay.bias.logit_direct import compile_direct
from assay.obs.logging import get_logger

log = get_logger(__name__)

RETRY_TARGET_ACCEPT = 0.99
SPARSE_TEXTBOOKS_PER_PUBLISHER = 4


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
    low_rank_mass_matrix: bool | None = None
    """nutpie's low-rank modified mass matrix; None: on the logit scales (``low_rank_for``)."""
    log_density: Literal["kernel", "graph"] = "kernel"
    """What nutpie evaluates on the binary and ordinal scales with passages integrated out:
    assay's hand-written numba kernel (``assay.bias.logit_kernel``; compiles in seconds) or
    PyMC's graph compiled by PyTensor (the reference; about a minute from an empty cache)."""


def uses_kernel(data: ModelData | None, config: BayesConfig) -> bool:
    """Whether nutpie samples ``assay.bias.logit_kernel`` rather than the PyMC graph: on the
    binary and ordinal scales with passages integrated out, unless ``config`` asks for the
    graph. The kernel always pools rating patterns: a per-passage model (``pooled=False``) is
    sampled with ``log_density="graph"`` or without ``data``."""
    return (
        data is not None
        and data.scale in ("binary", "ordinal")
        and config.sampler == "nutpie"
        and config.marginalise
        and config.log_density == "kernel"
    )


def target_accept_for(data: ModelData) -> float:
    """NUTS target acceptance for the design: 0.95 where publishers have fewer than
    ``SPARSE_TEXTBOOKS_PER_PUBLISHER`` textbooks (textbook_sd is then weakly identified and
    its tails need smaller steps), 0.9 otherwise."""
    if data.textbooks is None:
        return 0.9
    sparse = len(data.textbooks) < SPARSE_TEXTBOOKS_PER_PUBLISHER * len(data.publishers)
    return 0.95 if sparse else 0.9


def low_rank_for(data: ModelData) -> bool:
    """The low-rank mass matrix on the binary and ordinal scales: there the publisher effects,
    rater offsets and rater scales are correlated a posteriori, and on BABE it halved the
    leapfrog steps per draw (16 to 7.5) and tripled the bulk ESS per draw. The interval model
    keeps the diagonal one its robustness table was measured with."""
    return data.scale != "interval"


def compile_model(
    model: Any, config: BayesConfig, data: ModelData | None = None
) -> tuple[Any, float]:
    """The sampler-ready model (nutpie compiles it; PyMC's NUTS takes the model) and the
    seconds compilation took. With the ``data`` the model was built on, a marginalised logit
    model compiles as ``assay.bias.logit_kernel`` (``uses_kernel``)."""
    if config.sampler != "nutpie":
        return model, 0.0
    import nutpie

    started = time.perf_counter()
    if uses_kernel(data, config):
        assert data is not None
        compiled = compile_direct(data, model)
    else:
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
            low_rank_modified_mass_matrix=bool(config.low_rank_mass_matrix),
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
    """Sample ``model``, built on ``data``, at the design's target acceptance (a marginalised
    logit model through ``assay.bias.logit_kernel``: ``uses_kernel``); if that run fails its
    diagnostics (divergent transitions, R-hat, ESS or BFMI; and ``config.retry_failed``),
    re-run once, same seed, at ``RETRY_TARGET_ACCEPT`` with twice the warm-up and draws, and
    keep the second run whatever it shows - its diagnostics then decide. Smaller steps answer
    divergences; longer chains answer a slowly mixing scale parameter (textbook_sd on the
    binary scale), whose R-hat from 1,000 draws per chain can sit just above 1.01. Returns the
    posterior and one record per run.
    """
    if config.low_rank_mass_matrix is None:
        config = replace(config, low_rank_mass_matrix=low_rank_for(data))
    compiled, compile_s = compile_model(model, config, data)
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
