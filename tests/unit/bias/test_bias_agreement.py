"""Krippendorff's alpha, its bootstrap CI, per-rater and pairwise agreement."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

from assay.bias.aggregate import passage_stats, reliability_matrix, valid_ratings
from assay.bias.agreement import (
    _interval_alpha_from_sums,
    _interval_unit_sums,
    agreement_report,
    friedman_publishers,
)
from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, pd.DataFrame]:
    corpus = generate_corpus(SyntheticSpec(n_passages=300, n_textbooks=15, seed=3))
    return corpus, simulate_ratings(corpus, seed=4, round_to=0.5, missing_rate=0.05)


def test_alpha_equals_a_direct_krippendorff_computation(study) -> None:
    corpus, ratings = study
    report = agreement_report(ratings, "interval", passages=corpus, n_boot=200)
    valid = ratings[(ratings["error"] == "") & ratings["score"].notna()]
    direct = krippendorff.alpha(
        reliability_data=valid.pivot(
            index="rater", columns="passage_id", values="score"
        ).to_numpy(),
        level_of_measurement="interval",
    )
    assert report["alpha"] == pytest.approx(direct, abs=1e-12)
    assert report["ci_low"] < report["alpha"] < report["ci_high"]
    assert report["n_failed_ratings"] == int((ratings["error"] != "").sum())


def test_binary_alpha_is_nominal_and_matches_the_package(study) -> None:
    _, ratings = study
    report = agreement_report(ratings, "binary", n_boot=100)
    matrix = reliability_matrix(valid_ratings(ratings, "binary")).to_numpy(float)
    assert report["level_of_measurement"] == "nominal"
    direct = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert report["alpha"] == pytest.approx(direct)


def test_closed_form_interval_alpha_equals_the_package_on_continuous_data() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(4, 120)) + rng.normal(size=120)
    matrix[rng.random(matrix.shape) < 0.25] = np.nan
    closed = _interval_alpha_from_sums(_interval_unit_sums(matrix))
    assert closed == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval"), abs=1e-10
    )


def test_per_rater_alpha_ranks_the_noisiest_rater_last(study) -> None:
    corpus, ratings = study
    per_rater = agreement_report(ratings, "interval", passages=corpus, n_boot=50)["per_rater"]
    vs_truth = {r: v["alpha_vs_truth"] for r, v in per_rater.items()}
    # simulated noise: sim-alpha 0.35 < sim-beta 0.45 < sim-gamma 0.55
    assert vs_truth["sim-alpha"] > vs_truth["sim-beta"] > vs_truth["sim-gamma"]
    assert all(v["alpha_vs_others"] is not None for v in per_rater.values())


def test_pairwise_and_friedman(study) -> None:
    corpus, ratings = study
    report = agreement_report(ratings, "interval", passages=corpus, n_boot=50)
    pair = next(
        p for p in report["pairwise"] if {p["rater_a"], p["rater_b"]} == {"sim-alpha", "sim-beta"}
    )
    # offsets 0.15 and -0.10: the RMSE includes the 0.25 gap; correlation is clearly positive
    assert pair["rmse"] > 0.25 and pair["pearson"] > 0.5 and pair["spearman"] > 0.5
    friedman = friedman_publishers(valid_ratings(ratings, "interval"))
    assert friedman["n_publishers"] == 5 and friedman["p_value"] < 0.05


def test_passage_stats(study) -> None:
    _, ratings = study
    stats = passage_stats(ratings, "interval")
    assert len(stats) == 300
    assert (stats["n_valid"] + stats["n_failed"] == 3).all()
    one = ratings[(ratings["passage_id"] == stats["passage_id"][0]) & (ratings["error"] == "")]
    assert stats["mean"][0] == pytest.approx(one["score"].mean())
    assert stats["median"][0] == pytest.approx(one["score"].median())


def test_ordinal_scale_reads_llm_scores_as_their_nearest_anchor() -> None:
    """LLM scores (two decimals on -2..+2) become the five anchors the prompt names; an
    imported scale outside -2..+2 keeps its values as categories."""
    ratings = pd.DataFrame(
        {
            "passage_id": ["a", "b", "c", "d", "e"],
            "rater": "r",
            "score": [-1.73, -0.5, 0.49, 1.5, 2.0],
            "error": "",
        }
    )
    assert valid_ratings(ratings, "ordinal")["value"].tolist() == [-2, -1, 0, 2, 2]
    likert = ratings.assign(score=[1.0, 3.0, 5.0, 7.0, 7.0])
    assert valid_ratings(likert, "ordinal")["value"].tolist() == [1, 3, 5, 7, 7]
