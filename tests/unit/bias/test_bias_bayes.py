"""The publisher-effects model: its marginal likelihoods are exact, and it recovers known
publisher effects from simulated ratings (95% HDIs cover the truth)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from assay.bias.bayes import BayesConfig, fit
from assay.bias.design import ModelData
from assay.bias.effects import build_summary
from assay.bias.likelihood import RatingPatterns, answer_loglik, node_loglik, quadrature
from assay.bias.synthetic import (
    DEFAULT_RATERS,
    SyntheticSpec,
    generate_corpus,
    simulate_ratings,
)


def _tiny(scale: str, y: np.ndarray) -> ModelData:
    """Three passages of one publisher, three raters, one rating missing."""
    return ModelData(
        scale=scale,  # type: ignore[arg-type]
        publishers=["P"],
        raters=["a", "b", "c"],
        passages=["p0", "p1", "p2"],
        textbooks=None,
        passage_publisher=np.zeros(3, int),
        passage_textbook=None,
        obs_passage=np.array([0, 0, 0, 1, 1, 2, 2, 2]),
        obs_rater=np.array([0, 1, 2, 0, 2, 0, 1, 2]),
        y=y,
    )


SHARP_RATERS = (1.5, (0.37, 0.38, 0.61))
"""BABE's binary posterior (means): passage sd 1.5 and its sharpest experts' rater scales, so
a passage's likelihood turns from 0 to 1 within a quarter of a prior sd: 16 Gauss-Hermite nodes
missed its log by up to 0.06 per passage there (4 in BABE's log density)."""


@pytest.mark.parametrize(
    ("tau", "scale"), [(1.2, (1.3, 0.9, 0.85)), SHARP_RATERS], ids=["mild", "sharp"]
)
def test_binary_quadrature_matches_numerical_integration(
    tau: float, scale: tuple[float, ...]
) -> None:
    data = _tiny("binary", np.array([1, 1, 0, 0, 0, 1, 1, 1]))
    mean = np.array([0.3, 0.3, 0.3])
    offset = np.array([0.4, -0.1, -0.3])
    sig = RatingPatterns.of(data)
    _, log_w = quadrature()
    per_node = node_loglik(
        sig, answer_loglik("binary", mean[:1], tau, offset, np.asarray(scale))
    ).eval()
    got = np.logaddexp.reduce(per_node + log_w, axis=1)
    for s in range(len(sig.count)):
        p = int(np.flatnonzero(sig.of_passage == s)[0])
        rows = data.obs_passage == p

        def integrand(theta: float, rows: np.ndarray = rows) -> float:
            eta = (theta + offset[data.obs_rater[rows]]) / np.asarray(scale)[data.obs_rater[rows]]
            prob = 1 / (1 + np.exp(-eta))
            y = data.y[rows]
            return float(
                np.prod(np.where(y == 1, prob, 1 - prob)) * stats.norm.pdf(theta, 0.3, tau)
            )

        exact = np.log(integrate.quad(integrand, -12, 12, points=[-0.7, 0.1, 0.3], limit=200)[0])
        assert got[s] == pytest.approx(exact, abs=1e-4)


@pytest.mark.slow
def test_recovers_known_publisher_effects_and_rater_offsets() -> None:
    spec = SyntheticSpec(n_passages=400, n_textbooks=40, textbook_sd=0.1, seed=11)
    corpus = generate_corpus(spec)
    ratings = simulate_ratings(corpus, DEFAULT_RATERS, seed=12)
    result = fit(ratings, "interval", BayesConfig(draws=1000, tune=700, chains=4, seed=13))
    assert result.diagnostics.passed, result.diagnostics.failures
    summary = build_summary(result, ratings, passages=corpus)
    recovery = summary["recovery"]
    assert recovery["all_covered"], recovery
    # Absolute effects are the publisher means as the average rater sees them.
    mean_offset = np.mean([r.offset for r in DEFAULT_RATERS])
    for effect in summary["publisher_effects"]:
        truth = spec.publisher_effects[effect["publisher"]] + mean_offset
        assert effect["hdi_low"] <= truth <= effect["hdi_high"], effect
    for offset in summary["rater_offsets"]:
        rater = next(r for r in DEFAULT_RATERS if r.name == offset["rater"])
        assert offset["hdi_low"] <= rater.offset - mean_offset <= offset["hdi_high"], offset


def test_ordinal_quadrature_matches_numerical_integration() -> None:
    data = _tiny("ordinal", np.array([2, 1, 0, 0, 1, 2, 2, 1]))
    data.levels = np.array([-1.0, 0.0, 1.0])
    mean, tau = np.array([0.1, 0.1, 0.1]), 0.8
    offset, scale = np.array([0.2, -0.3, 0.1]), np.array([1.1, 0.8, 1.0 / 0.88])
    cut = np.array([-0.7, 0.9])
    sig = RatingPatterns.of(data)
    _, log_w = quadrature()
    per_node = node_loglik(sig, answer_loglik("ordinal", mean[:1], tau, offset, scale, cut)).eval()
    got = np.logaddexp.reduce(per_node + log_w, axis=1)

    def category_prob(theta: float, rater: int, level: int) -> float:
        eta = (theta + offset[rater]) / scale[rater]
        cdf = [0.0, *(1 / (1 + np.exp(-(c / scale[rater] - eta))) for c in cut), 1.0]
        return cdf[level + 1] - cdf[level]

    for s in range(len(sig.count)):
        p = int(np.flatnonzero(sig.of_passage == s)[0])
        rows = np.flatnonzero(data.obs_passage == p)

        def integrand(theta: float, rows: np.ndarray = rows) -> float:
            prob = np.prod([category_prob(theta, data.obs_rater[i], int(data.y[i])) for i in rows])
            return float(prob * stats.norm.pdf(theta, 0.1, tau))

        exact = np.log(integrate.quad(integrand, -10, 10)[0])
        assert got[s] == pytest.approx(exact, abs=1e-4)
