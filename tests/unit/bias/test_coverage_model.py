"""The coverage study's fitting model is the study's model: the ``pm.Data`` model with a
vanishing pseudo-rating for unrated passages has the log density of
``build_normal_model`` on the data that is kept, up to a constant."""

from __future__ import annotations

import numpy as np
import pytest

from assay.bias.coverage import build_data_model, fixed_layout
from assay.bias.model_normal import build_normal_model
from assay.bias.simulate import Design, Hyper, draw_effects, draw_scores, model_data

pytest.importorskip("pymc")

DESIGN = Design(publishers=3, textbooks_per_publisher=2, passages_per_textbook=4, raters=3)


def _scores(unrated: list[int]) -> np.ndarray:
    hyper = Hyper(0.3, 0.5, np.array([0.2, -0.1, -0.1]), np.array([0.4, 0.5, 0.6]))
    rng = np.random.default_rng(7)
    scores = draw_scores(DESIGN, draw_effects(DESIGN, hyper, 1.0, rng), "well-specified", rng)
    scores[unrated] = np.nan
    scores[1, 2] = np.nan  # one missing rating in a passage others rated
    return scores


def _logp_differences(model, points) -> np.ndarray:
    logp = model.compile_logp()
    values = np.array([logp(point) for point in points])
    return values - values[0]


def _points(model) -> list[dict]:
    rng = np.random.default_rng(3)
    start = model.initial_point()
    return [
        {name: value + rng.normal(0.0, 0.3, np.shape(value)) for name, value in start.items()}
        for _ in range(4)
    ]


@pytest.mark.parametrize("unrated", [[], [5, 17]])
def test_data_model_matches_the_study_model_on_the_kept_data(unrated: list[int]) -> None:
    scores = _scores(unrated)
    data, kept = model_data(DESIGN, scores)
    assert len(kept) == DESIGN.n_passages - len(unrated)
    study = build_normal_model(data)
    full = build_data_model(model_data(DESIGN, np.zeros_like(scores))[0])
    values, mask = fixed_layout(scores)
    full.set_data("values", values)
    full.set_data("mask", mask)
    points = _points(study)
    np.testing.assert_allclose(
        _logp_differences(full, points), _logp_differences(study, points), atol=1e-6
    )
    assert np.ptp(_logp_differences(study, points)) > 1.0  # the points do differ
