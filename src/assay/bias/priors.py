"""The priors every likelihood of the publisher-effects model shares.

Created in the order the model builders call them, which fixes the order of the sampler's
parameters (and so, for a seed, its draws): the standard deviations, the rater parameters,
then the group effects and the cutpoints. PyMC is imported on first use: it is heavy and only a
fit needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.bias.collapsed import Nesting
from assay.bias.design import ModelData
from assay.bias.likelihood import PUBLISHER_PRIOR_SD, data_input

LOGIT_PRIOR_SD = {
    "textbook_sd": 1.0,
    "passage_sd": 1.0,
    "rater_offset": 1.0,
    "rater_log_scale": 0.5,
    "cutpoints": 2.0,
}
"""Prior scales on the logit scales (HalfNormal for the sds, ZeroSumNormal for the raters,
Normal around ``cutpoint_means`` for the cutpoints); ``assay.bias.logit_kernel`` reads them too."""
CENTRED_MIN_RATINGS_PER_TEXTBOOK = 60
"""Textbooks are centred on the logit scales only when each has at least this many ratings."""


@dataclass(frozen=True)
class RaterAndSpread:
    """The parameters every builder samples: the spreads of the group levels and the raters'
    offsets and scales (``textbook_sd`` None without textbooks)."""

    textbook_sd: Any
    passage_sd: Any
    rater_offset: Any
    rater_scale: Any


def rater_and_spread(data: ModelData) -> RaterAndSpread:
    import pymc as pm

    interval, prior = data.scale == "interval", LOGIT_PRIOR_SD
    textbook_sd = None
    if data.textbooks is not None:
        textbook_sd = pm.HalfNormal("textbook_sd", 0.5 if interval else prior["textbook_sd"])
    passage_sd = pm.HalfNormal("passage_sd", prior["passage_sd"])
    offset_sd = 0.5 if interval else prior["rater_offset"]
    offset = pm.ZeroSumNormal("rater_offset", sigma=offset_sd, dims="rater")
    return RaterAndSpread(textbook_sd, passage_sd, offset, _rater_scale(data))


def _rater_scale(data: ModelData) -> Any:
    import pymc as pm

    if data.scale == "interval":
        return pm.LogNormal("rater_scale", mu=math.log(0.4), sigma=0.8, dims="rater")
    sigma = LOGIT_PRIOR_SD["rater_log_scale"]
    log_scale = pm.ZeroSumNormal("rater_log_scale", sigma=sigma, dims="rater")
    return pm.Deterministic("rater_scale", pm.math.exp(log_scale), dims="rater")


def centred_textbooks(data: ModelData) -> bool:
    """Sample textbook effects centred only when every textbook holds many ratings."""
    if data.passage_textbook is None:
        return False
    per_textbook = np.bincount(data.passage_textbook[data.obs_passage])
    return bool(per_textbook.min() >= CENTRED_MIN_RATINGS_PER_TEXTBOOK)


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


def group_mean(data: ModelData, textbook_sd: Any) -> Any:
    """Each passage group's expected effect (textbook, else publisher): its publisher's effect
    plus, with textbooks, its textbook's, both sampled."""
    publisher = _publisher_prior(data)
    if data.textbooks is None:
        return publisher
    textbook_publisher = Nesting.of(data).textbook_publisher
    assert textbook_publisher is not None
    of_textbook = data_input("textbook_publisher", textbook_publisher.index)
    return publisher[of_textbook] + _sampled_textbook_effect(data, textbook_sd)


def passage_group(data: ModelData) -> np.ndarray:
    """The group (textbook, else publisher) of every passage: an index into ``group_mean``."""
    return Nesting.of(data).passage_group.index


def passage_mean(data: ModelData, textbook_sd: Any) -> Any:
    """Each passage's expected effect: its group's (``group_mean``)."""
    return group_mean(data, textbook_sd)[passage_group(data)]


def cutpoints(data: ModelData) -> Any:
    """Ordered cutpoints of the ordinal scale (None on the other scales)."""
    import pymc as pm

    if data.scale != "ordinal":
        return None
    assert data.levels is not None
    means = cutpoint_means(len(data.levels))
    return pm.Normal(
        "cutpoints",
        mu=means,
        sigma=LOGIT_PRIOR_SD["cutpoints"],
        transform=pm.distributions.transforms.ordered,
        initval=means,
        dims="cutpoint",
    )


def cutpoint_means(levels: int) -> np.ndarray:
    """The cutpoints' prior means and initial values: evenly spaced from -2 to 2."""
    return np.linspace(-2, 2, levels - 1)


def passage_effects(mean: Any, passage_sd: Any) -> Any:
    """One non-centred parameter per passage (models that do not integrate passages out)."""
    import pymc as pm

    passage_z = pm.Normal("passage_z", 0.0, 1.0, dims="passage")
    return mean + passage_sd * passage_z
