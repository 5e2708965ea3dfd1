"""Verdicts with a ROPE and a stated reference: a bias shared by all raters must not turn a
neutral publisher into a "credibly left" one.

The posterior draws are built by hand (no sampler): publisher effects as the average rater sees
them are the true effects plus the raters' shared bias, with a small posterior spread.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from assay.bias.design import prepare
from assay.bias.effects import VerdictSettings, publisher_effects
from assay.bias.fit import FitResult
from assay.bias.verdicts import ZERO_ASSUMPTION, decide

TRUE_EFFECTS = {"Aldine": -0.6, "Beacon": -0.25, "Cardinal": 0.0, "Delmar": 0.3, "Evergreen": 0.65}
SHARED_BIAS = -0.2
"""Every rater scores 0.2 more liberal than the truth (the default sim raters average -0.067)."""
OFFSETS = {"r1": 0.1, "r2": -0.1, "r3": 0.0}
POSTERIOR_SD = 0.03


def _study(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows, passages = [], []
    for publisher, effect in TRUE_EFFECTS.items():
        for k in range(40):
            pid = f"{publisher}-{k}"
            truth = effect + rng.normal(0, 0.3)
            passages.append({"passage_id": pid, "publisher": publisher, "true_score": truth})
            for rater, offset in OFFSETS.items():
                score = truth + SHARED_BIAS + offset + rng.normal(0, 0.2)
                rows.append(
                    {
                        "passage_id": pid,
                        "publisher": publisher,
                        "rater": rater,
                        "score": float(np.clip(score, -2, 2)),
                        "error": "",
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(passages)


def _result(ratings: pd.DataFrame, seed: int = 1) -> FitResult:
    """A FitResult whose posterior is centred on the truth as the average rater sees it."""
    rng = np.random.default_rng(seed)
    data = prepare(ratings, "interval")
    centre = np.array([TRUE_EFFECTS[p] + SHARED_BIAS for p in data.publishers])
    chains, draws = 2, 1000
    effects = centre + POSTERIOR_SD * rng.standard_normal((chains, draws, len(centre)))
    offsets = np.array([OFFSETS[r] for r in data.raters])
    offset_draws = offsets + 0.01 * rng.standard_normal((chains, draws, len(offsets)))
    idata = az.from_dict(
        posterior={"publisher_effect": effects, "rater_offset": offset_draws},
        coords={"publisher": data.publishers, "rater": data.raters},
        dims={"publisher_effect": ["publisher"], "rater_offset": ["rater"]},
    )
    return FitResult(idata=idata, data=data, diagnostics=None, timings={})  # type: ignore[arg-type]


def _by_publisher(rows: list[dict]) -> dict[str, dict]:
    return {row["publisher"]: row for row in rows}


def test_decision_rule_is_hdi_against_the_rope() -> None:
    assert decide(-0.05, 0.05, 0.1) == "equivalent"
    assert decide(0.11, 0.3, 0.1) == "above"
    assert decide(-0.3, -0.11, 0.1) == "below"
    assert decide(0.05, 0.3, 0.1) == "undecided"  # straddles the ROPE's edge
    assert decide(-0.3, 0.3, 0.1) == "undecided"  # wider than the ROPE


def test_a_neutral_publisher_is_not_called_left_when_the_raters_share_a_bias() -> None:
    """Without gold passages the headline is the contrast to the average publisher: Cardinal
    (true effect 0, mean of the truths 0.02) is practically equivalent to it. The absolute "vs 0"
    reading, which the old rule used, calls it credibly left: it is kept, labelled."""
    ratings, _ = _study()
    rows, rule = publisher_effects(_result(ratings), ratings, passages=None)
    cardinal = _by_publisher(rows)["Cardinal"]
    assert cardinal["verdict_reference"] == "the average publisher"
    assert cardinal["verdicts"][0]["decision"] == "equivalent"
    assert "credibly left" not in cardinal["verdict"]
    absolute = next(v for v in cardinal["verdicts"] if v["reference"] == "zero (absolute)")
    assert absolute["decision"] == "below" and absolute["assumption"] == ZERO_ASSUMPTION
    assert cardinal["hdi_high"] < 0  # the old rule (HDI vs 0) would have said "credibly left"
    assert rule["gold_passages"]["available"] is False
    assert _by_publisher(rows)["Aldine"]["verdicts"][0]["decision"] == "below"
    assert _by_publisher(rows)["Evergreen"]["verdicts"][0]["decision"] == "above"


def test_gold_passages_anchor_the_absolute_scale() -> None:
    """With known true scores the shared bias is estimated (about -0.2) and removed: Cardinal is
    practically equivalent to 0 on the absolute scale, Aldine credibly left."""
    ratings, passages = _study()
    rows, rule = publisher_effects(
        _result(ratings), ratings, passages=passages, settings=VerdictSettings(seed=3)
    )
    gold = rule["gold_passages"]
    assert gold["available"] and gold["n_gold_passages"] == 200
    assert gold["shared_rater_bias_mean"] == pytest.approx(SHARED_BIAS, abs=0.03)
    by = _by_publisher(rows)
    assert by["Cardinal"]["verdict_reference"] == "gold passages (absolute)"
    assert by["Cardinal"]["verdicts"][0]["decision"] == "equivalent"
    assert by["Aldine"]["verdicts"][0]["decision"] == "below"
    assert by["Aldine"]["verdicts"][0]["mean"] == pytest.approx(-0.6, abs=0.05)


def test_a_named_reference_publisher_and_the_rope_setting() -> None:
    ratings, _ = _study()
    settings = VerdictSettings(rope=0.5, reference_publisher="Cardinal")
    rows, rule = publisher_effects(_result(ratings), ratings, settings=settings)
    by = _by_publisher(rows)
    assert rule["rope"] == [-0.5, 0.5] and not rule["rope_is_default"]
    assert by["Beacon"]["verdict_reference"] == "publisher Cardinal"
    assert by["Beacon"]["verdicts"][0]["decision"] == "equivalent"  # -0.25 is inside +/-0.5
    assert by["Evergreen"]["verdicts"][0]["decision"] == "above"
    with pytest.raises(ValueError, match="reference publisher"):
        publisher_effects(
            _result(ratings), ratings, settings=VerdictSettings(reference_publisher="Nobody")
        )
