"""Which PyMC model a study's scale gets: one builder per likelihood, sharing the priors.

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
"""

from __future__ import annotations

from typing import Any

from assay.bias.design import ModelData
from assay.bias.model_logit import build_binary_model, build_ordinal_model
from assay.bias.model_normal import build_normal_model

BUILDERS = {
    "interval": build_normal_model,
    "binary": build_binary_model,
    "ordinal": build_ordinal_model,
}


def collapses_effects(data: ModelData, marginalise: bool = True) -> bool:
    """Are all group effects integrated out analytically (interval scale, marginalised)?"""
    return marginalise and data.scale == "interval"


def build_model(data: ModelData, *, marginalise: bool = True) -> Any:
    """The PyMC model for the study's scale.

    ``marginalise`` integrates effects out: on the interval scale exactly, every level
    (passages, textbooks, publishers; their draws are added after sampling); on the logit
    scales the passage effects, by Gauss-Hermite quadrature over grouped passage signatures.
    ``marginalise=False`` keeps one non-centred parameter per passage (and per textbook).
    """
    return BUILDERS[data.scale](data, marginalise=marginalise)
