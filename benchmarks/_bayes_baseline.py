"""The straightforward baseline of ``bayes_bench.py``: the publisher-effects model as a PyMC user
would write it - one effect per passage, every parameter identified - sampled with PyMC's
default NUTS while a callback stamps the wall-clock time of every draw.

Same priors as assay's model, so both target the same posterior: publisher effects N(0, 1),
textbook effects N(0, textbook_sd) with textbook_sd ~ HalfNormal(0.5), passage effects
N(publisher + textbook, passage_sd) with passage_sd ~ HalfNormal(1), sum-to-zero rater offsets
(ZeroSumNormal, sigma 0.5; no separate intercept, so nothing trades off against the publisher
effects) and per-rater noise LogNormal(log 0.4, 0.8).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.bias.bayes import ModelData

STORED = ["publisher_effect", "textbook_sd", "passage_sd", "rater_offset", "rater_sd"]
"""What the baseline keeps of its draws (not the 4,500 passage and 150 textbook effects)."""


def straightforward_model(data: ModelData, *, centred: bool = True) -> Any:
    """The full passage-level model; ``centred=False`` writes passage effects non-centred."""
    import pymc as pm

    if data.textbooks is None or data.passage_textbook is None:
        raise ValueError("the baseline is the textbook design; the study has no textbooks")
    with pm.Model(coords=data.coords) as model:
        publisher = pm.Normal("publisher_effect", 0.0, 1.0, dims="publisher")
        textbook_sd = pm.HalfNormal("textbook_sd", 0.5)
        textbook = pm.Normal("textbook_effect", 0.0, textbook_sd, dims="textbook")
        passage_sd = pm.HalfNormal("passage_sd", 1.0)
        mean = publisher[data.passage_publisher] + textbook[data.passage_textbook]
        if centred:
            passage = pm.Normal("passage_effect", mean, passage_sd, dims="passage")
        else:
            passage_z = pm.Normal("passage_z", 0.0, 1.0, dims="passage")
            passage = mean + passage_sd * passage_z
        offset = pm.ZeroSumNormal("rater_offset", sigma=0.5, dims="rater")
        noise = pm.LogNormal("rater_sd", mu=math.log(0.4), sigma=0.8, dims="rater")
        pm.Normal(
            "y",
            mu=passage[data.obs_passage] + offset[data.obs_rater],
            sigma=noise[data.obs_rater],
            observed=data.y,
        )
    return model


@dataclass
class StampedRun:
    """A baseline run: its posterior, the seconds since the start at which each post-warm-up
    draw reached the main process (chain x draw), and the total wall time."""

    idata: Any
    stamps: np.ndarray
    seconds: float


def sample_stamped(
    data: ModelData, *, draws: int, tune: int, seed: int, centred: bool = True, chains: int = 4
) -> StampedRun:
    """Build and sample the baseline with ``pm.sample`` (default NUTS, 2 cores), timing every
    draw from before the model is built (PyMC compiles inside ``pm.sample``)."""
    import pymc as pm

    started = time.perf_counter()
    stamps: list[list[float]] = [[] for _ in range(chains)]

    def stamp(trace: Any, draw: Any) -> None:
        if not draw.tuning:
            stamps[draw.chain].append(time.perf_counter() - started)

    model = straightforward_model(data, centred=centred)
    with model:
        idata = pm.sample(
            draws=draws, tune=tune, chains=chains, cores=2, random_seed=seed,
            progressbar=False, compute_convergence_checks=False, callback=stamp,
            var_names=STORED,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    if any(len(s) != draws for s in stamps):
        raise RuntimeError(
            f"expected {draws} stamped draws per chain, got {[len(s) for s in stamps]}"
        )
    return StampedRun(idata=idata, stamps=np.array(stamps), seconds=seconds)
