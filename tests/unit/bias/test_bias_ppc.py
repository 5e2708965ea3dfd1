"""New-passage posterior predictive checks have power: a misspecified data set (clipped at
+/-2, or with a rater-by-publisher interaction) gets an extreme p for the statistic that sees
it, a well-specified one does not.

The "posterior" is a point mass at the parameters that generated the data (without the
misspecification): no sampler runs, so the test is fast and deterministic, and it checks the
replication and the statistics, not the fit. Seeds are fixed and thresholds generous
(extreme = p < 0.005 or > 0.995; fine = inside (0.005, 0.995)).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from assay.bias.design import prepare
from assay.bias.ppc import new_passage_checks

PUBLISHERS = ["P1", "P2", "P3", "P4", "P5"]
RATERS = ["r1", "r2", "r3"]
OFFSETS = np.array([0.1, -0.1, 0.0])
SCALES = np.array([0.2, 0.25, 0.3])
TEXTBOOKS_PER_PUBLISHER, PASSAGES_PER_TEXTBOOK = 4, 15
HEADLINE = (
    "share at +/-2",
    "rater x publisher interaction",
    "within-passage spread",
    "spread[r1]",
    "spread[r2]",
    "spread[r3]",
)


def _generate(
    effects: np.ndarray,
    *,
    textbook_sd: float = 0.15,
    passage_sd: float = 0.3,
    interaction: np.ndarray | None = None,
    clip: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Interval ratings from the model's generative story (+ optional misspecification)."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, publisher in enumerate(PUBLISHERS):
        for t in range(TEXTBOOKS_PER_PUBLISHER):
            book = effects[j] + rng.normal(0, textbook_sd)
            for k in range(PASSAGES_PER_TEXTBOOK):
                theta = book + rng.normal(0, passage_sd)
                for r, rater in enumerate(RATERS):
                    extra = 0.0 if interaction is None else interaction[r, j]
                    score = theta + OFFSETS[r] + extra + rng.normal(0, SCALES[r])
                    rows.append(
                        {
                            "passage_id": f"{publisher}-{t}-{k}",
                            "publisher": publisher,
                            "textbook": f"{publisher}-book-{t}",
                            "rater": rater,
                            "score": float(np.clip(score, -2, 2)) if clip else float(score),
                            "error": "",
                        }
                    )
    return pd.DataFrame(rows)


def _point_mass(
    effects: np.ndarray, textbook_sd: float = 0.15, passage_sd: float = 0.3
) -> az.InferenceData:
    draws = 400
    return az.from_dict(
        posterior={
            "publisher_effect": np.tile(effects, (1, draws, 1)),
            "textbook_sd": np.full((1, draws), textbook_sd),
            "passage_sd": np.full((1, draws), passage_sd),
            "rater_offset": np.tile(OFFSETS, (1, draws, 1)),
            "rater_scale": np.tile(SCALES, (1, draws, 1)),
        },
        coords={"publisher": PUBLISHERS, "rater": RATERS},
        dims={
            "publisher_effect": ["publisher"],
            "rater_offset": ["rater"],
            "rater_scale": ["rater"],
        },
    )


def _checks(ratings: pd.DataFrame, effects: np.ndarray, **hyper: float) -> dict:
    data = prepare(ratings, "interval")
    return new_passage_checks(_point_mass(effects, **hyper), data, seed=5)["statistics"]


def test_well_specified_data_get_no_extreme_p() -> None:
    effects = np.array([-0.3, -0.1, 0.0, 0.1, 0.3])
    ratings = _generate(effects, seed=1)
    assert ratings["score"].abs().max() < 2  # nothing would have been clipped
    checks = _checks(ratings, effects)
    for name in HEADLINE:
        assert 0.005 < checks[name]["p_value"] < 0.995, (name, checks[name]["p_value"])


def test_clipped_scores_are_flagged_by_the_share_at_the_ends() -> None:
    effects = np.array([-1.6, -0.8, 0.0, 0.8, 1.6])
    ratings = _generate(effects, passage_sd=0.5, clip=True, seed=2)
    at_ends = (ratings["score"].abs() == 2).mean()
    assert at_ends > 0.02  # the misspecification is really there
    checks = _checks(ratings, effects, passage_sd=0.5)
    assert checks["share at +/-2"]["p_value"] < 0.005
    assert checks["share at +/-2"]["extreme"]


def test_a_rater_by_publisher_interaction_is_flagged() -> None:
    effects = np.array([-0.3, -0.1, 0.0, 0.1, 0.3])
    # r1 sees the publishers' spread stretched, r2 compressed (rows and columns sum to zero).
    slope = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * 0.3
    interaction = np.stack([slope, -slope, np.zeros(5)])
    ratings = _generate(effects, interaction=interaction, seed=3)
    checks = _checks(ratings, effects)
    assert checks["rater x publisher interaction"]["p_value"] < 0.005
    cell = checks["mean[r1, P5]"]
    assert cell["observed"] > cell["replicated_94"][1]  # r1 rates P5 further right than predicted


@pytest.mark.parametrize("seed", [11])
def test_binary_votes_per_sentence_are_checked(seed: int) -> None:
    rng = np.random.default_rng(seed)
    effects = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    rows = []
    for j, publisher in enumerate(PUBLISHERS):
        for k in range(60):
            theta = effects[j] + rng.normal(0, 0.8)
            for r, rater in enumerate(RATERS):
                latent = (theta + OFFSETS[r]) / 1.0 + rng.logistic()
                rows.append(
                    {
                        "passage_id": f"{publisher}-{k}",
                        "publisher": publisher,
                        "rater": rater,
                        "biased": int(latent > 0),
                        "error": "",
                    }
                )
    data = prepare(pd.DataFrame(rows), "binary")
    idata = az.from_dict(
        posterior={
            "publisher_effect": np.tile(effects, (1, 400, 1)),
            "passage_sd": np.full((1, 400), 0.8),
            "rater_offset": np.tile(OFFSETS, (1, 400, 1)),
            "rater_scale": np.ones((1, 400, 3)),
        },
        coords={"publisher": PUBLISHERS, "rater": RATERS},
        dims={
            "publisher_effect": ["publisher"],
            "rater_offset": ["rater"],
            "rater_scale": ["rater"],
        },
    )
    checks = new_passage_checks(idata, data, seed=5)["statistics"]
    for name in ("share of unanimous sentences", "sd of the biased share per sentence"):
        assert 0.005 < checks[name]["p_value"] < 0.995, (name, checks[name]["p_value"])
