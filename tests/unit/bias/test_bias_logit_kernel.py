"""The hand-written logit log density (``assay.bias.logit_kernel``) against PyMC's: with
PyMC's Gauss-Hermite rule, the same value and gradient at random points, on every variant of
the model (binary and ordinal, with no textbooks, centred and non-centred textbooks), and the
same named draws; with its own adaptive rule (``assay.bias.adaptive_rule``), the value of a
fine reference rule and a gradient equal to finite differences, smooth and sharp raters alike.
The posterior it samples is compared with the per-passage model's in
``test_bias_pooled_quadrature.py``."""

from __future__ import annotations

import numpy as np
import pytest
from _designs import random_design

from assay.bias.likelihood import quadrature
from assay.bias.logit_direct import (
    DirectLogitDensity,
    Layout,
    compile_direct,
    initial_point_fn,
    reference_rule,
)
from assay.bias.model_logit import build_binary_model, build_ordinal_model
from assay.bias.priors import centred_textbooks

FAST = "FAST_COMPILE"
"""PyMC's functions are compiled for a few evaluations: Python ops, no C or numba compilation."""
VARIANTS = [
    ("binary", False, 0.2),
    ("binary", True, 0.2),
    ("binary", True, 0.7),
    ("ordinal", False, 0.2),
    ("ordinal", True, 0.2),
    ("ordinal", True, 0.7),
]


def _pymc_functions(model):
    from pymc.blocking import DictToArrayBijection, RaveledVars

    point = model.initial_point()
    names = [v.name for v in model.value_vars]
    logp = model.compile_logp(mode=FAST)
    dlogp = model.compile_dlogp(mode=FAST)
    template = DictToArrayBijection.map({n: point[n] for n in names})

    def at(x):
        values = DictToArrayBijection.rmap(RaveledVars(x, template.point_map_info))
        return float(logp(values)), np.asarray(dlogp(values))

    return at, template.data


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"{v[0]}-tb{v[1]}-miss{v[2]}")
def variant(request):
    scale, textbooks, missing = request.param
    data = random_design(np.random.default_rng(11), scale, textbooks=textbooks, missing=missing)
    build = build_binary_model if scale == "binary" else build_ordinal_model
    model = build(data)
    return data, model, DirectLogitDensity.of(data)


def test_the_variants_cover_centred_and_non_centred_textbooks():
    rng = np.random.default_rng(11)
    centred = {
        missing: centred_textbooks(random_design(rng, "binary", textbooks=True, missing=missing))
        for missing in (0.2, 0.7)
    }
    assert centred == {0.2: True, 0.7: False}


def test_layout_follows_pymc_value_variables(variant):
    _, model, density = variant
    _, initial = _pymc_functions(model)
    assert density.layout.n_dim == initial.size
    names = [
        v.name.rsplit("_", 3)[0] if v.name.endswith("__") else v.name for v in model.value_vars
    ]
    assert [name for name, _, _ in density.layout.blocks] == [
        n.removesuffix("_log").removesuffix("_zerosum").removesuffix("_ordered") for n in names
    ]
    np.testing.assert_allclose(density.layout.initial_point(), initial, atol=1e-12)


def test_log_density_and_gradient_equal_pymc_with_its_gauss_hermite_rule(variant):
    _, model, density = variant
    pymc_at, initial = _pymc_functions(model)
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = initial + rng.normal(0, 0.7, initial.size)
        expected, expected_grad = pymc_at(x)
        logp, grad = density.logp_and_grad(x, quadrature())
        assert abs(logp - expected) <= 1e-9 * max(1.0, abs(expected))
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-8)


def _sharpened(density: DirectLogitDensity, x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` with the first rater's scale ``factor`` times smaller (the zero sum of the log
    scales kept by the last rater's)."""
    draw = density.expand(x)
    log_scale = draw["rater_log_scale"].copy()
    log_scale[0] -= np.log(factor)
    log_scale[-1] += np.log(factor)
    draw["rater_log_scale"] = log_scale
    return density.unconstrained(draw)


POINTS = {"smooth": 1.0, "sharp": 12.0, "very sharp": 150.0}
"""How much sharper than at a random point the first rater is made (its scale over
passage_sd, w, from 0.3-2 to 0.02-0.2 and 0.002-0.01): from no node clustering to nodes packed
at its thresholds."""


@pytest.mark.parametrize("sharpness", list(POINTS))
def test_the_adaptive_rule_equals_a_fine_reference_rule(variant, sharpness):
    """The log density the sampler sees against ``reference_rule`` (a trapezoid rule fine for
    the sharpest rater) at three random points: within 1e-4 nats (at most 7e-5 seen, on
    textbook designs, whose group means spread the nodes wider), where Gauss-Hermite misses
    by up to 3e-4 nats at the smooth points and by more than 0.1 at a sharp one."""
    _, _, density = variant
    rng = np.random.default_rng(21)
    gauss_hermite_errors = []
    for _ in range(3):
        x = density.layout.initial_point() + rng.normal(0, 0.5, density.layout.n_dim)
        x = _sharpened(density, x, POINTS[sharpness])
        draw = density.expand(x)
        reference = density.logp_and_grad(x, reference_rule(draw, density.mean_span(draw)))[0]
        assert density.logp_and_grad(x)[0] == pytest.approx(reference, abs=1e-4)
        gauss_hermite_errors.append(abs(density.logp_and_grad(x, quadrature())[0] - reference))
    assert (max(gauss_hermite_errors) > 0.1) is (sharpness != "smooth"), gauss_hermite_errors


@pytest.mark.parametrize("sharpness", list(POINTS))
def test_gradient_matches_finite_differences(variant, sharpness):
    """Independent of PyMC: central differences of the kernel's own log density, through the
    adaptive rule's moving nodes and weights when a rater is sharp."""
    _, _, density = variant
    x = density.layout.initial_point() + np.random.default_rng(3).normal(
        0, 0.5, density.layout.n_dim
    )
    x = _sharpened(density, x, POINTS[sharpness])
    _, grad = density.logp_and_grad(x)
    step = 1e-6
    for i in range(len(x)):
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        numeric = (density.logp_and_grad(up)[0] - density.logp_and_grad(down)[0]) / (2 * step)
        assert numeric == pytest.approx(grad[i], rel=1e-5, abs=1e-5)


def test_named_draws_equal_pymcs_constrained_values(variant):
    _, model, density = variant
    _, initial = _pymc_functions(model)
    from pymc.blocking import DictToArrayBijection, RaveledVars

    x = initial + np.random.default_rng(9).normal(0, 0.5, initial.size)
    point = DictToArrayBijection.rmap(
        RaveledVars(x, DictToArrayBijection.map(model.initial_point()).point_map_info)
    )
    expected = model.compile_fn(
        model.replace_rvs_by_values([model[n] for n in density.names()]),
        inputs=model.value_vars,
        point_fn=True,
        mode=FAST,
        on_unused_input="ignore",
    )(point)
    got = density.expand(x)
    for name, value in zip(density.names(), expected, strict=True):
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-12, err_msg=name)


def test_interval_scale_is_refused():
    data = random_design(np.random.default_rng(0), "binary", textbooks=False, missing=0.2)
    with pytest.raises(ValueError, match="covers binary and ordinal, not interval"):
        Layout.of(type(data)(**{**data.__dict__, "scale": "interval"}))


def test_chains_start_where_nutpie_starts_the_pymc_model(variant):
    """PyMC's initial point with uniform(-1, 1) jitter, one draw per seed, in the kernel's
    layout: within 1 of the unjittered point, different per seed, the same for one seed."""
    _, model, density = variant
    draw = initial_point_fn(model)
    starts = [draw(seed) for seed in (1, 2, 1)]
    base = density.layout.initial_point()
    for start in starts:
        assert start.shape == base.shape
        assert np.abs(start - base).max() <= 1.0
    assert np.array_equal(starts[0], starts[2]) and not np.array_equal(starts[0], starts[1])


def test_starting_points_can_be_drawn_from_many_threads_at_once(variant):
    """nutpie draws each chain's start from its own thread; PyMC's Python-mode function
    failed ("Failed to initialize point") when two ran at once without a lock."""
    from concurrent.futures import ThreadPoolExecutor

    _, model, _ = variant
    draw = initial_point_fn(model)
    with ThreadPoolExecutor(8) as pool:
        starts = list(pool.map(draw, [s % 4 for s in range(64)]))
    for seed, start in enumerate(starts):
        assert np.array_equal(start, starts[seed % 4])


def test_a_model_built_on_other_data_is_refused():
    rng = np.random.default_rng(0)
    data = random_design(rng, "binary", textbooks=False, missing=0.2)
    other = random_design(rng, "binary", textbooks=True, missing=0.2)
    with pytest.raises(ValueError, match="build the model on the same data"):
        compile_direct(data, build_binary_model(other))


def _sharp_study(noise: float, raters: int) -> object:
    """Binary answers of ``raters`` raters with logistic noise of scale ``noise`` on 400
    passages of sd 3.6 (BABE's opinion labels' posterior passage sd) in 3 publishers."""
    from assay.bias.design import ModelData

    rng = np.random.default_rng(2)
    passages = 400
    publisher = rng.integers(0, 3, passages)
    theta = np.array([-0.5, 0.0, 0.5])[publisher] + rng.normal(0, 3.6, passages)
    obs_passage = np.repeat(np.arange(passages), raters)
    obs_rater = np.tile(np.arange(raters), passages)
    answer = theta[obs_passage] + noise * rng.logistic(size=len(obs_passage)) > 0
    return ModelData(
        scale="binary", publishers=["A", "B", "C"], raters=[f"r{k}" for k in range(raters)],
        passages=[f"p{i}" for i in range(passages)], textbooks=None, passage_publisher=publisher,
        passage_textbook=None, obs_passage=obs_passage, obs_rater=obs_rater,
        y=answer.astype(int),
    )  # fmt: skip


def test_unconstrained_inverts_expand(variant):
    _, _, density = variant
    x = density.layout.initial_point()
    x = x + np.random.default_rng(8).normal(0, 0.5, density.layout.n_dim)
    np.testing.assert_allclose(density.unconstrained(density.expand(x)), x, atol=1e-12)


@pytest.mark.parametrize(
    ("rule", "noise", "raters", "flagged"),
    [
        ("gauss-hermite", 1.0, 4, False),
        ("gauss-hermite", 0.1, 4, True),
        ("adaptive", 0.1, 4, False),
        ("adaptive", 0.01, 4, False),
        ("adaptive", 0.002, 24, True),
    ],
)
def test_the_quadrature_check_flags_a_rule_too_coarse_for_the_raters(rule, noise, raters, flagged):
    """The model's rater scales are relative (their logs sum to zero), so sharpness is
    passage_sd over the rater scale. Gauss-Hermite's 40 nodes do at 3.6 / 1 and miss 3.6 / 0.1
    (BABE's opinion labels' posterior) by an amount that moves with passage_sd; the adaptive
    rule's 96 nodes do at 3.6 / 0.01 and run out at 24 raters of 3.6 / 0.002, each threshold
    in its own place. Three draws around the truth, passage_sd 3.6 / noise +- 5%."""
    from assay.bias.logit_direct import QUADRATURE_TOLERANCE, quadrature_error

    density = DirectLogitDensity.of(_sharp_study(noise, raters))
    offsets = np.linspace(-1.5, 1.5, raters) / noise
    draws = [
        {
            "passage_sd": np.asarray(3.6 / noise * factor),
            "rater_offset": offsets - offsets.mean(),
            "rater_log_scale": np.zeros(raters),
            "rater_scale": np.ones(raters),
            "publisher_effect": np.array([-0.5, 0.0, 0.5]) / noise,
        }
        for factor in (0.95, 1.0, 1.05)
    ]
    spread = quadrature_error(density, draws, quadrature() if rule == "gauss-hermite" else None)
    assert (spread > QUADRATURE_TOLERANCE) is flagged, spread


def test_the_report_states_the_quadrature_error_where_there_is_one():
    from assay.bias.report import _diagnostics

    diag = {
        "rhat_max": 1.004, "ess_bulk_min": 1609, "ess_tail_min": 366, "ess_required": 400,
        "divergences": 0, "bfmi_min": 0.9, "passed": False, "failures": ["quadrature ..."],
        "attempts": [],
    }  # fmt: skip
    assert "quadrature" not in _diagnostics({**diag, "quadrature_error": None})["figures"]
    figures = _diagnostics({**diag, "quadrature_error": 9.3612})["figures"]
    assert "quadrature error spread 9.361 nats (≤ 0.1)" in figures


@pytest.mark.parametrize("shift", [0.0, -400.0])
def test_patterns_sum_on_the_probability_scale_and_on_the_log_scale_alike(shift):
    """Two units of three ratings each over five nodes, their log-likelihoods a normal size
    and then 1,200 nats lower (exp underflows; the unit is summed again on the log scale):
    log sum_k w_k prod p and its gradients equal scipy's logsumexp and softmax."""
    from scipy.special import logsumexp, softmax

    from assay.bias.logit_kernel import pattern_pass

    rng = np.random.default_rng(4)
    table = np.vstack([rng.normal(-2.0, 1.0, (4, 5)) + shift, np.zeros((1, 5))])
    cells = np.array([[0, 1, 2], [1, 3, 4]])
    count = np.array([2.0, 3.0])
    log_weights = np.log(rng.dirichlet(np.ones(5)))[None, :]
    grad_table, grad_weights = np.zeros_like(table), np.zeros((1, 5))
    total = pattern_pass(
        table, cells, count, np.zeros(2, np.int64), log_weights, grad_table, grad_weights
    )
    per_node = [log_weights[0] + table[row].sum(axis=0) for row in cells]
    expected = sum(c * logsumexp(p) for c, p in zip(count, per_node, strict=True))
    assert total == pytest.approx(expected, rel=1e-13)
    shares = [c * softmax(p) for c, p in zip(count, per_node, strict=True)]
    np.testing.assert_allclose(grad_weights[0], shares[0] + shares[1], rtol=1e-12)
    np.testing.assert_allclose(grad_table[1], shares[0] + shares[1], rtol=1e-12)
    np.testing.assert_allclose(grad_table[0], shares[0], rtol=1e-12)
