"""Prior sensitivity by importance reweighting: the prior scales it assumes are the model's, and
reweighting draws from one prior to a halved one gives the halved prior."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from assay.bias.design import prepare
from assay.bias.fit import FitResult
from assay.bias.likelihood import PUBLISHER_PRIOR_SD
from assay.bias.models import build_model
from assay.bias.power import VarianceComponents, difference_se, power, textbooks_needed
from assay.bias.sensitivity import HYPERPRIOR_SCALES, prior_sensitivity
from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings


@pytest.mark.parametrize("scale", ["interval", "binary"])
def test_the_assumed_hyperprior_scales_are_the_models(scale: str) -> None:
    corpus = generate_corpus(SyntheticSpec(n_passages=60, n_textbooks=10, seed=1))
    data = prepare(simulate_ratings(corpus, seed=1), scale)
    model = build_model(data)
    for name, scales in HYPERPRIOR_SCALES.items():
        sigma = model[name].owner.inputs[-1].eval()
        assert float(sigma) == scales[scale], name


def test_reweighting_prior_draws_to_a_halved_prior_halves_their_spread() -> None:
    """With no data the posterior is the prior: publisher effects ~ N(0, 1). Reweighted to the
    prior scale halved, their weighted sd must be about 0.5; doubling the textbook_sd prior with
    weights on a flat textbook_sd moves nothing the weights do not touch."""
    rng = np.random.default_rng(0)
    draws = 4000
    sd = PUBLISHER_PRIOR_SD["interval"]
    effects = sd * rng.standard_normal((1, draws, 3))
    idata = az.from_dict(
        posterior={
            "publisher_effect": effects,
            "passage_sd": np.abs(rng.standard_normal((1, draws))),
        },
        coords={"publisher": ["A", "B", "C"]},
        dims={"publisher_effect": ["publisher"]},
    )
    data = prepare(
        pd.DataFrame(
            {
                "passage_id": ["a", "b", "c"],
                "publisher": ["A", "B", "C"],
                "rater": "r",
                "score": 0.0,
                "error": "",
            }
        ),
        "interval",
    )
    result = FitResult(idata=idata, data=data, diagnostics=None, timings={})  # type: ignore[arg-type]
    variants = {(v["prior"], v["scale_factor"]): v for v in prior_sensitivity(result)["variants"]}
    halved = variants[("publisher_effect prior", 0.5)]
    assert halved["reliable"]
    for row in halved["publishers"]:
        low, high = row["contrast_interval_95"]
        # contrasts of 3 iid N(0, s^2) have sd s*sqrt(2/3): at s = 0.5, 95% half-width ~0.80
        assert (high - low) / 2 == pytest.approx(1.96 * 0.5 * np.sqrt(2 / 3), rel=0.15)
    assert ("textbook_sd hyperprior", 0.5) not in variants  # not in this posterior
    assert variants[("passage_sd hyperprior", 2.0)]["max_abs_shift"] < 0.1


def test_the_power_calculation_matches_a_simulation_of_its_own_assumptions() -> None:
    """Simulate publisher means from the variance components, apply the ROPE rule to a normal
    interval, and compare the hit rate with the analytic power."""
    components = VarianceComponents(textbook_sd=0.15, passage_sd=0.45, rater_sd=0.4)
    textbooks, passages, raters, diff, rope = 6, 10, 3, 0.3, 0.1
    rng = np.random.default_rng(0)
    n = 20000

    def publisher_means(effect: float) -> np.ndarray:
        books = rng.normal(0, components.textbook_sd, (n, textbooks))
        pas = rng.normal(0, components.passage_sd, (n, textbooks, passages)).mean(axis=2)
        noise = rng.normal(0, components.rater_sd, (n, textbooks, passages, raters)).mean(
            axis=(2, 3)
        )
        return effect + (books + pas + noise).mean(axis=1)

    estimate = publisher_means(diff) - publisher_means(0.0)
    se = difference_se(components, textbooks, passages, raters)
    simulated = np.mean(estimate - 1.959964 * se > rope)
    analytic = power(diff, rope, components, textbooks, passages, raters)
    assert simulated == pytest.approx(analytic, abs=0.02)
    needed = textbooks_needed(diff, rope, components, passages, raters)
    assert needed is not None
    assert power(diff, rope, components, needed, passages, raters) >= 0.8
    assert power(diff, rope, components, needed - 1, passages, raters) < 0.8
    assert textbooks_needed(0.05, rope, components, passages, raters) is None
