"""Ratings drawn from the model: coded as ``assay.bias.design.prepare`` codes a study's
ratings table, passages nobody rated left out, effects not centred."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assay.bias.design import prepare
from assay.bias.simulate import (
    Design,
    Hyper,
    draw_effects,
    draw_scores,
    model_data,
    names,
    passage_textbook,
    textbook_publisher,
)

DESIGN = Design(publishers=3, textbooks_per_publisher=4, passages_per_textbook=6, raters=3)
HYPER = Hyper(0.4, 0.5, np.array([0.3, -0.1, -0.2]), np.array([0.3, 0.4, 0.5]))


def _long_table(scores: np.ndarray) -> pd.DataFrame:
    labels = names(DESIGN)
    passage, rater = np.nonzero(~np.isnan(scores))
    textbook = passage_textbook(DESIGN)[passage]
    return pd.DataFrame(
        {
            "passage_id": np.array(labels["passage"])[passage],
            "publisher": np.array(labels["publisher"])[textbook_publisher(DESIGN)[textbook]],
            "textbook": [labels["textbook"][t].split(" / ")[1] for t in textbook],
            "rater": np.array(labels["rater"])[rater],
            "score": scores[passage, rater],
            "error": "",
        }
    )


def test_model_data_codes_like_prepare_and_drops_unrated_passages() -> None:
    rng = np.random.default_rng(5)
    scores = draw_scores(DESIGN, draw_effects(DESIGN, HYPER, 1.0, rng), "clip", rng)
    scores[[4, 30]] = np.nan
    scores[7, 1] = np.nan
    ours, kept = model_data(DESIGN, scores)
    theirs = prepare(_long_table(scores), "interval")
    assert len(kept) == DESIGN.n_passages - 2 and 4 not in kept and 30 not in kept
    for field in ("publishers", "raters", "passages", "textbooks"):
        assert getattr(ours, field) == getattr(theirs, field), field
    for field in ("passage_publisher", "passage_textbook"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field))
    ours_cells = sorted(zip(ours.obs_passage, ours.obs_rater, ours.y, strict=True))
    theirs_cells = sorted(zip(theirs.obs_passage, theirs.obs_rater, theirs.y, strict=True))
    assert ours_cells == theirs_cells


def test_effects_are_drawn_uncentred_and_variants_bend_the_same_draw() -> None:
    truth = draw_effects(DESIGN, HYPER, 1.0, np.random.default_rng(1))
    by_publisher = np.bincount(textbook_publisher(DESIGN), truth.textbook_effect)
    assert np.abs(by_publisher).min() > 1e-6  # textbook effects not centred per publisher
    plain = draw_scores(DESIGN, truth, "well-specified", np.random.default_rng(2))
    clipped = draw_scores(DESIGN, truth, "clip", np.random.default_rng(2))
    integer = draw_scores(DESIGN, truth, "integer", np.random.default_rng(2))
    np.testing.assert_array_equal(clipped, np.clip(plain, -2, 2))
    np.testing.assert_array_equal(integer, np.clip(np.rint(plain), -2, 2))
    refused = draw_scores(DESIGN, truth, "mnar", np.random.default_rng(2))
    missing = np.isnan(refused)
    assert 0 < missing.mean() < 1
    assert np.abs(plain[missing]).mean() > np.abs(plain[~missing]).mean()  # strong content


def test_interaction_leaves_the_average_rater_and_the_average_publisher_unchanged() -> None:
    truth = draw_effects(DESIGN, HYPER, 1.0, np.random.default_rng(1))
    plain = draw_scores(DESIGN, truth, "well-specified", np.random.default_rng(3))
    bent = draw_scores(DESIGN, truth, "interaction", np.random.default_rng(3))
    gamma = bent - plain  # passages x raters: gamma[rater, publisher of the passage]
    assert np.abs(gamma).max() > 0.05
    np.testing.assert_allclose(gamma.mean(axis=1), 0.0, atol=1e-12)
    publisher = textbook_publisher(DESIGN)[passage_textbook(DESIGN)]
    first = np.unique(publisher, return_index=True)[1]
    np.testing.assert_allclose(gamma[first].mean(axis=0), 0.0, atol=1e-12)
