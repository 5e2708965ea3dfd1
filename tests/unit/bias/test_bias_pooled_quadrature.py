"""The binary and ordinal likelihoods pool passages with the same group and the same (rater,
answer) pairs into one weighted quadrature term: the pooled log density (and its gradient)
equals the per-passage one, and so does the posterior."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _designs import random_design

from assay.bias.bayes import BayesConfig, diagnose, sample
from assay.bias.design import ModelData
from assay.bias.likelihood import RatingPatterns, answer_loglik, quadrature_logp
from assay.bias.model_logit import build_binary_model, build_ordinal_model
from assay.bias.sampling import compile_model, uses_kernel


def log_density_and_gradient(patterns: RatingPatterns, data: ModelData, seed: int) -> np.ndarray:
    """The quadrature log density and its gradient at random parameter values."""
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(seed)
    n_groups = patterns.group.n_groups
    mean, sd, offset, scale = pt.vector(), pt.scalar(), pt.vector(), pt.vector()
    cut = pt.vector()
    per_answer = answer_loglik(data.scale, mean, sd, offset, scale, cut)
    logp = quadrature_logp(patterns, per_answer)
    inputs = [mean, sd, offset, scale, cut]
    grads = pt.grad(logp, inputs[:4])
    function = pytensor.function(
        inputs, [logp, *grads], on_unused_input="ignore", mode="FAST_COMPILE"
    )
    n_raters = len(data.raters)
    values = function(
        rng.normal(0, 1, n_groups),
        0.9,
        rng.normal(0, 0.5, n_raters),
        np.exp(rng.normal(0, 0.3, n_raters)),
        np.sort(rng.normal(0, 1.5, 3)),
    )
    return np.concatenate([np.atleast_1d(v) for v in values])


@pytest.mark.parametrize("scale", ["binary", "ordinal"])
@pytest.mark.parametrize("textbooks", [False, True])
@pytest.mark.parametrize("missing", [0.0, 0.4])
def test_pooled_log_density_equals_the_per_passage_one(
    scale: str, textbooks: bool, missing: float
) -> None:
    seed = 4 * (scale == "ordinal") + 2 * textbooks + (missing > 0)  # a design per case
    data = random_design(np.random.default_rng(seed), scale, textbooks=textbooks, missing=missing)
    pooled = RatingPatterns.of(data)
    per_passage = RatingPatterns.of(data, pooled=False)
    assert len(per_passage.count) == len(data.passages)
    assert len(pooled.count) < len(data.passages)  # patterns do repeat
    assert pooled.count.sum() == len(data.passages)
    got = log_density_and_gradient(pooled, data, seed)
    want = log_density_and_gradient(per_passage, data, seed)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_patterns_of_a_hand_made_design() -> None:
    """Six passages, two publishers, two raters (binary): publisher 0 has passages rated
    (1, 1), (1, 1), (0, -) and publisher 1 (1, 1), (0, -), (0, -); '-' is missing."""
    data = ModelData(
        scale="binary",
        publishers=["A", "B"],
        raters=["x", "y"],
        passages=[f"p{i}" for i in range(6)],
        textbooks=None,
        passage_publisher=np.array([0, 0, 0, 1, 1, 1]),
        passage_textbook=None,
        obs_passage=np.array([0, 0, 1, 1, 2, 3, 3, 4, 5]),
        obs_rater=np.array([0, 1, 0, 1, 0, 0, 1, 0, 0]),
        y=np.array([1, 1, 1, 1, 0, 1, 1, 0, 0]),
    )
    patterns = RatingPatterns.of(data)
    # Flat index (group * raters + rater) * 2 + answer; 8 is the padding row.
    units = {
        (int(g), int(n), tuple(int(c) for c in cells))
        for g, n, cells in zip(patterns.group.index, patterns.count, patterns.cells, strict=True)
    }
    assert units == {(0, 1, (0, 8)), (0, 2, (1, 3)), (1, 1, (5, 7)), (1, 2, (4, 8))}
    assert patterns.pad == 8
    assert patterns.count[patterns.of_passage].tolist() == [2, 2, 1, 1, 2, 2]
    per_passage = RatingPatterns.of(data, pooled=False)
    assert per_passage.count.tolist() == [1.0] * 6
    assert per_passage.cells.tolist() == [[1, 3], [1, 3], [0, 8], [5, 7], [4, 8], [4, 8]]


def _simulated_study(scale: str, noise: float = 1.0, passage_sd: float = 0.7) -> ModelData:
    """120 passages of 3 publishers (effects -0.8, 0, 0.8) in 12 textbooks, 3 raters, answers
    drawn from the model itself (logistic noise of scale ``noise``)."""
    rng = np.random.default_rng(5)
    passages, raters = 120, 3
    publisher = np.repeat(np.arange(3), passages // 3)
    textbook = publisher * 4 + np.tile(np.arange(4), passages // 4)
    theta = np.array([-0.8, 0.0, 0.8])[publisher] + rng.normal(0, passage_sd, passages)
    offset = np.array([-0.3, 0.1, 0.2])
    obs_passage = np.repeat(np.arange(passages), raters)
    obs_rater = np.tile(np.arange(raters), passages)
    eta = theta[obs_passage] + offset[obs_rater] + noise * rng.logistic(size=len(obs_passage))
    y = (eta > 0).astype(int) if scale == "binary" else np.digitize(eta, [-1.0, 1.0]) * 1.0
    return ModelData(
        scale=scale,  # type: ignore[arg-type]
        publishers=["A", "B", "C"],
        raters=["x", "y", "z"],
        passages=[f"p{i}" for i in range(passages)],
        textbooks=[f"T{t}" for t in range(12)],
        passage_publisher=publisher,
        passage_textbook=textbook,
        obs_passage=obs_passage,
        obs_rater=obs_rater,
        y=y,
        levels=None if scale == "binary" else np.array([0.0, 1.0, 2.0]),
    )


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["binary", "ordinal"])
def test_pooled_and_per_passage_posteriors_agree(scale: str) -> None:
    """The pooled model as the study samples it (through ``assay.bias.logit_kernel``) and the
    per-passage model (PyMC's graph), each with its own seed: the same draws' names and
    dimensions; every publisher effect's posterior mean differs by less than 4 combined
    Monte-Carlo standard errors, and its sd by less than 15%."""
    import arviz as az

    data = _simulated_study(scale)
    build = build_binary_model if scale == "binary" else build_ordinal_model
    config = BayesConfig(draws=500, tune=500, chains=2, cores=2)
    assert uses_kernel(data, config)
    posteriors = []
    for pooled, seed in ((True, 1), (False, 2)):
        model = build(data, pooled=pooled)
        compiled, _ = compile_model(model, config, data if pooled else None)
        idata = sample(model, replace(config, seed=seed), compiled=compiled)
        assert diagnose(idata).divergences == 0
        posteriors.append(idata.posterior)
    names = [sorted(str(n) for n in p.data_vars if not str(n).endswith("__")) for p in posteriors]
    assert names[0] == names[1]
    for name in names[0]:
        assert posteriors[0][name].dims == posteriors[1][name].dims, name
    fits = [posterior["publisher_effect"] for posterior in posteriors]
    (pooled_fit, per_passage_fit) = fits
    mean_gap = np.abs(pooled_fit.mean(("chain", "draw")) - per_passage_fit.mean(("chain", "draw")))
    mcse = np.hypot(*(az.mcse(f.to_dataset(name="e"))["e"].to_numpy() for f in fits))
    assert (mean_gap.to_numpy() < 4 * mcse).all(), (mean_gap.to_numpy(), mcse)
    sd_ratio = pooled_fit.std(("chain", "draw")) / per_passage_fit.std(("chain", "draw"))
    assert np.abs(sd_ratio.to_numpy() - 1).max() < 0.15, sd_ratio.to_numpy()


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["binary"])
def test_quadrature_posterior_agrees_with_sampled_passage_effects_for_sharp_raters(
    scale: str,
) -> None:
    """Raters as sharp as BABE's experts (noise scale 0.35 against a passage sd of 1.5, where
    16 Gauss-Hermite nodes were visibly off): the quadrature model's publisher effects agree
    with those of the exact model that samples every passage effect, each with its own seed -
    means within 4 combined Monte-Carlo standard errors, sds within 15%. Binary only: the
    ordinal case did not finish within 15 minutes on a loaded machine."""
    import arviz as az

    data = _simulated_study(scale, noise=0.35, passage_sd=1.5)
    build = build_binary_model if scale == "binary" else build_ordinal_model
    config = BayesConfig(draws=500, tune=500, chains=2, cores=2, low_rank_mass_matrix=True)
    fits = []
    for marginalise, seed in ((True, 3), (False, 4)):
        model = build(data, marginalise=marginalise)
        idata = sample(model, replace(config, seed=seed, target_accept=0.95))
        assert diagnose(idata).divergences == 0
        fits.append(idata.posterior["publisher_effect"])
    quadrature_fit, exact_fit = fits
    mean_gap = np.abs(quadrature_fit.mean(("chain", "draw")) - exact_fit.mean(("chain", "draw")))
    mcse = np.hypot(*(az.mcse(f.to_dataset(name="e"))["e"].to_numpy() for f in fits))
    assert (mean_gap.to_numpy() < 4 * mcse).all(), (mean_gap.to_numpy(), mcse)
    sd_ratio = quadrature_fit.std(("chain", "draw")) / exact_fit.std(("chain", "draw"))
    assert np.abs(sd_ratio.to_numpy() - 1).max() < 0.15, sd_ratio.to_numpy()


def _logp_constants(data: ModelData) -> list[bytes]:
    """Every constant array in the model's log density and its gradient, as raw bytes."""
    import pytensor
    from pytensor.graph.basic import Constant, ancestors

    model = (build_binary_model if data.scale == "binary" else build_ordinal_model)(data)
    logp = model.logp()
    graph = [logp, *pytensor.grad(logp, model.value_vars)]
    constants = [v for v in ancestors(graph) if isinstance(v, Constant)]
    return sorted(np.asarray(c.data).tobytes() + str(c.type).encode() for c in constants)


@pytest.mark.parametrize("scale", ["binary", "ordinal"])
@pytest.mark.parametrize("textbooks", [False, True])
def test_the_ratings_enter_the_compiled_model_as_inputs(scale: str, textbooks: bool) -> None:
    """Two studies of the same dimensions but different ratings (and, with textbooks, a
    different textbook-to-publisher map) build log densities with identical constants: the
    numba cache, keyed by the graph and its constants, serves both with one compilation."""
    first = random_design(np.random.default_rng(1), scale, textbooks=textbooks, missing=0.4)
    second = random_design(np.random.default_rng(2), scale, textbooks=textbooks, missing=0.2)
    if textbooks:
        assert first.passage_textbook is not None
        relabel = np.random.default_rng(3).permutation(len(first.textbooks or []))
        second = replace(second, passage_textbook=relabel[first.passage_textbook])
    assert not np.array_equal(RatingPatterns.of(first).cells, RatingPatterns.of(second).cells)
    assert _logp_constants(first) == _logp_constants(second)
