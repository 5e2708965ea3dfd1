"""The logit-scale models: 0/1 votes and ordered categories.

    binary:    y ~ Bernoulli(logit = (theta_p + rater_offset[r]) / rater_scale[r])
    ordinal:   y ~ OrderedLogistic((theta_p + rater_offset[r]) / rater_scale[r],
                                   cutpoints / rater_scale[r])

Rater scales are relative (log scales sum to zero); in the ordinal model the cutpoints carry
the overall level. When marginalised, passage effects are integrated out by Gauss-Hermite
quadrature over pooled rating patterns (``assay.bias.likelihood``); textbook effects are
sampled, non-centred where textbooks are sparsely informed (``assay.bias.priors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.bias.design import ModelData
from assay.bias.likelihood import RatingPatterns, answer_loglik, quadrature_logp
from assay.bias.priors import (
    cutpoints,
    group_mean,
    passage_effects,
    passage_group,
    rater_and_spread,
)


def _quadrature_loglik(
    data: ModelData, pooled: bool, mean: Any, passage_sd: Any, offset: Any, scale: Any, cut: Any
) -> Any:
    per_answer = answer_loglik(data.scale, mean, passage_sd, offset, scale, cut)
    return quadrature_logp(RatingPatterns.of(data, pooled=pooled), per_answer)


Observe = Callable[[Any, Any, Any], None]


def _build_logit_model(data: ModelData, marginalise: bool, pooled: bool, observe: Observe) -> Any:
    """The shared structure of both logit models; ``observe(latent, rating_scale, cut)`` adds
    the observed ratings when passages are not integrated out. ``pooled=False`` integrates
    every passage on its own (the same log density, for tests and benchmarks)."""
    import pymc as pm

    with pm.Model(coords=data.coords) as model:
        common = rater_and_spread(data)
        offset, scale = common.rater_offset, common.rater_scale
        mean = group_mean(data, common.textbook_sd)
        cut = cutpoints(data)
        if marginalise:
            loglik = _quadrature_loglik(data, pooled, mean, common.passage_sd, offset, scale, cut)
            pm.Potential("ratings_marginal_loglik", loglik)
            return model
        theta = passage_effects(mean[passage_group(data)], common.passage_sd)
        latent = theta[data.obs_passage] + offset[data.obs_rater]
        observe(latent, scale[data.obs_rater], cut)
    return model


def build_binary_model(data: ModelData, *, marginalise: bool = True, pooled: bool = True) -> Any:
    """The PyMC model for 0/1 ratings."""
    import pymc as pm

    def observe(latent: Any, rating_scale: Any, cut: Any) -> None:
        pm.Bernoulli("y", logit_p=latent / rating_scale, observed=data.y, dims="obs")

    return _build_logit_model(data, marginalise, pooled, observe)


def build_ordinal_model(data: ModelData, *, marginalise: bool = True, pooled: bool = True) -> Any:
    """The PyMC model for ordered categories (``data.levels``)."""
    import pymc as pm

    def observe(latent: Any, rating_scale: Any, cut: Any) -> None:
        pm.OrderedLogistic(
            "y",
            eta=latent / rating_scale,
            cutpoints=cut[None, :] / rating_scale[:, None],
            observed=data.y.astype(int),
            dims="obs",
        )

    return _build_logit_model(data, marginalise, pooled, observe)
