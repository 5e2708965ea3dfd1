"""Kendall's W with an exact or permutation p; the truth column compared honestly (leave-one-out
majority, never across constructs); failures tabulated by publisher."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assay.bias.aggregate import failures_by_publisher, reliability_matrix, valid_ratings
from assay.bias.agreement import agreement_report, per_rater_alpha
from assay.bias.concordance import kendall_w


def test_perfect_agreement_of_three_raters_on_five_publishers_gets_the_exact_p() -> None:
    """Only the rankings identical to the first rater's reach W = 1: p = 1 / (5!)^2. The Friedman
    chi-square cannot go below 0.0174 here."""
    values = np.tile(np.arange(5.0), (3, 1))
    result = kendall_w(values)
    assert result["w"] == pytest.approx(1.0)
    assert result["p_value"] == pytest.approx(1 / math.factorial(5) ** 2)
    assert result["p_method"].startswith("exact")
    assert stats.friedmanchisquare(*values.T).pvalue == pytest.approx(0.01735, abs=1e-5)


def test_w_matches_its_definition_and_the_friedman_statistic() -> None:
    """W = chi2_Friedman / (m (n - 1)) without ties."""
    values = np.random.default_rng(0).normal(size=(4, 6))
    chi2 = stats.friedmanchisquare(*values.T).statistic
    result = kendall_w(values)
    assert result["w"] == pytest.approx(chi2 / (4 * 5))
    assert result["p_method"].startswith("permutation")  # (6!)^3 rankings: too many to count


def test_the_exact_p_matches_random_rankings_and_unrelated_raters_are_not_significant() -> None:
    values = np.random.default_rng(1).normal(size=(3, 5))
    assert kendall_w(values)["p_value"] > 0.05
    wide = np.random.default_rng(2).normal(size=(3, 4))
    brute = kendall_w(wide)  # exact: (4!)^2 = 576 rankings
    rng = np.random.default_rng(3)
    ranks = stats.rankdata(wide, axis=1)
    null = []
    for _ in range(20000):
        shuffled = np.stack([rng.permutation(r) for r in ranks])
        sums = shuffled.sum(axis=0)
        null.append(12 * ((sums - sums.mean()) ** 2).sum() / (9 * (64 - 4)))
    assert brute["p_value"] == pytest.approx(
        np.mean(np.array(null) >= brute["w"] - 1e-12), abs=0.02
    )


def _independent_binary_raters(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three raters voting at random (no signal), and the passages' majority of all three as
    ``expert_label`` - like BABE's final labels."""
    rng = np.random.default_rng(seed)
    votes = rng.integers(0, 2, size=(3, n))
    rows = [
        {
            "passage_id": f"p{i}",
            "publisher": "A",
            "rater": f"e{r}",
            "biased": int(votes[r, i]),
            "error": "",
        }
        for r in range(3)
        for i in range(n)
    ]
    passages = pd.DataFrame(
        {"passage_id": [f"p{i}" for i in range(n)], "expert_label": (votes.sum(0) >= 2).astype(int)}
    )
    return pd.DataFrame(rows), passages


def test_a_raters_own_majority_is_compared_leave_one_out() -> None:
    """Random raters agree with a majority that includes their own vote 75% of the time (alpha
    ~0.5 by construction); with the majority of the others it is chance (alpha ~0)."""
    ratings, passages = _independent_binary_raters()
    report = agreement_report(ratings, "binary", passages=passages, n_boot=10)
    assert report["truth_column"] == "expert_label"
    assert any("leave-one-out" in note for note in report["truth_notes"])
    for entry in report["per_rater"].values():
        assert abs(entry["alpha_vs_truth"]) < 0.15
    matrix = reliability_matrix(valid_ratings(ratings, "binary"))
    truth = passages.set_index("passage_id")["expert_label"].astype(float)
    naive = per_rater_alpha(matrix, "binary", truth)  # the old comparison, own vote included
    assert all(entry["alpha_vs_truth"] > 0.3 for entry in naive.values())


def test_a_label_is_never_the_truth_of_scores() -> None:
    ratings = pd.DataFrame(
        {
            "passage_id": ["a", "a", "b", "b", "c", "c"],
            "publisher": ["X", "X", "Y", "Y", "Y", "Y"],
            "rater": ["r1", "r2"] * 3,
            "score": [1.0, 1.5, -1.0, -0.5, 0.0, 0.5],
            "error": "",
        }
    )
    passages = pd.DataFrame({"passage_id": ["a", "b", "c"], "expert_label": [1, 0, 0]})
    report = agreement_report(ratings, "interval", passages=passages, n_boot=10)
    assert report["truth_column"] is None
    assert "alpha_vs_truth" not in report["per_rater"]["r1"]
    assert any("another construct" in note for note in report["truth_notes"])


def test_failures_are_tabulated_by_publisher_and_reason() -> None:
    ratings = pd.DataFrame(
        {
            "passage_id": ["a", "a", "b", "b", "c", "c"],
            "publisher": ["X", "X", "Y", "Y", "Y", "Y"],
            "rater": ["r1", "r2"] * 3,
            "score": [1.0, None, -1.0, None, 0.0, None],
            "error": ["", "parse_error: not JSON", "", "timeout: 30 s", "", ""],
        }
    )
    rows = {row["publisher"]: row for row in failures_by_publisher(ratings, "interval")}
    assert rows["X"] == {
        "publisher": "X",
        "attempted": 2,
        "valid": 1,
        "failed": 1,
        "failed_share": 0.5,
        "by_reason": {"parse_error": 1},
    }
    assert rows["Y"]["by_reason"] == {"timeout": 1, "no value": 1}
