"""The bias report's summary, table and forest plot all show the estimate the verdict is about."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assay.bias.report_summary import headline_rows, summary_lines
from assay.stats import holm


def _summary() -> dict[str, Any]:
    """The issue's case: Cardinal House's average-rater effect is -0.074 [-0.172, 0.026] while
    its verdict is about the gold-anchored +0.004 [-0.095, 0.105]."""
    gold = {
        "reference": "gold passages (absolute)",
        "assumption": "assumes the gold scores are correct",
        "mean": 0.004,
        "hdi_low": -0.095,
        "hdi_high": 0.105,
        "decision": "undecided",
        "verdict": "undecided vs gold passages (absolute)",
    }
    effect = {
        "publisher": "Cardinal House",
        "n_passages": 120,
        "raw_mean_rating": -0.2,
        "mean": -0.074,
        "hdi_low": -0.172,
        "hdi_high": 0.026,
        "verdict": gold["verdict"],
        "verdict_reference": gold["reference"],
        "verdict_assumption": gold["assumption"],
        "verdicts": [gold, {**gold, "reference": "average publisher", "mean": -0.074}],
    }
    return {
        "diagnostics": {"passed": True},
        "verdicts": {"rope": [-0.1, 0.1]},
        "publisher_effects": [effect],
        "predictive_checks": {
            "new_passages": {
                "statistics": {"a": {}, "b": {}},
                "extreme": [],
                "multiplicity": "Holm over all statistics",
            }
        },
    }


AGREEMENT = {
    "alpha": 0.8,
    "ci_low": 0.75,
    "ci_high": 0.85,
    "n_units": 600,
    "n_raters": 3,
    "failures_by_publisher": [{"by_reason": {"parse_error": 15}}],
}


def test_headline_is_the_verdicts_estimate_not_the_average_rater_effect() -> None:
    (row,) = headline_rows(_summary())
    assert (row["mean"], row["hdi_low"], row["hdi_high"]) == (0.004, -0.095, 0.105)
    assert row["reference"] == "gold passages (absolute)"
    assert row["average_rater_effect"] == -0.074


def test_summary_lines_state_verdict_reference_and_parse_errors() -> None:
    text = "\n".join(summary_lines(_summary(), AGREEMENT))
    assert "Cardinal House: undecided vs gold passages (absolute); +0.004 [-0.095, +0.105]" in text
    assert "Verdicts are against gold passages (absolute)" in text
    assert "parse_error 15" in text and "refus" not in text
    assert "0 of 2 statistics flagged (none); Holm over all statistics" in text


def test_holm_matches_the_step_down_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    uniform = list(rng.uniform(size=20))
    assert all(a >= b for a, b in zip(holm(uniform), uniform, strict=True))
