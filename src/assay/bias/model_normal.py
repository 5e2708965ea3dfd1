"""The interval-scale model: ratings Normal around the passage effect plus the rater's offset.

    y ~ Normal(theta_p + rater_offset[r], rater_scale[r])

The model is linear-Gaussian, so when marginalised every level (passages, textbooks,
publishers) is integrated out analytically (``assay.bias.collapsed.collapsed_normal_logp``):
the sampler sees only the two standard deviations and the rater parameters, and no funnel
couples group effects to their scales. The effects are drawn afterwards from their exact
conditional posteriors (``assay.bias.fit.add_collapsed_effects``).
"""

from __future__ import annotations

from typing import Any

from assay.bias.collapsed import Nesting, RatingCells, collapsed_normal_logp
from assay.bias.design import ModelData, dense
from assay.bias.likelihood import PUBLISHER_PRIOR_SD
from assay.bias.priors import passage_effects, passage_mean, rater_and_spread


def build_normal_model(data: ModelData, *, marginalise: bool = True) -> Any:
    """The PyMC model for interval ratings; ``marginalise=False`` keeps one non-centred
    parameter per passage and per textbook, with the ratings as observed variables."""
    import pymc as pm

    with pm.Model(coords=data.coords) as model:
        common = rater_and_spread(data)
        if marginalise:
            nesting = Nesting.of(data)
            cells = RatingCells.pooled(*dense(data), nesting.passage_group)
            loglik = collapsed_normal_logp(
                cells, nesting, common.passage_sd, common.textbook_sd,
                PUBLISHER_PRIOR_SD["interval"], common.rater_offset, common.rater_scale,
            )  # fmt: skip
            pm.Potential("ratings_marginal_loglik", loglik)
            return model
        theta = passage_effects(passage_mean(data, common.textbook_sd), common.passage_sd)
        latent = theta[data.obs_passage] + common.rater_offset[data.obs_rater]
        sigma = common.rater_scale[data.obs_rater]
        pm.Normal("y", mu=latent, sigma=sigma, observed=data.y, dims="obs")
    return model
