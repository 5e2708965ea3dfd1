"""BABE's expert labels (read from ../shared/data/babe, never copied): the import, alpha
against a direct krippendorff computation, and publisher effects against raw biased rates."""

from __future__ import annotations

from pathlib import Path

import krippendorff
import pandas as pd
import pytest
from scipy import stats

from assay.bias.agreement import agreement_report
from assay.bias.babe import load_babe


@pytest.fixture(scope="module")
def babe(babe_dir: Path):
    return load_babe(babe_dir)


def test_import_maps_experts_to_raters_and_outlets_to_publishers(babe) -> None:
    assert babe.ratings["rater"].nunique() == 8
    assert babe.ratings["publisher"].nunique() == 11
    assert babe.publisher_mapping == {"breitbart": "Breitbart", "msnbc": "MSNBC"}
    assert babe.notes["ratings_without_label"] == 1  # kept as a failed row, not dropped
    assert (babe.ratings["error"] != "").sum() == 1
    assert set(babe.ratings["biased"].dropna().unique()) == {0, 1}


def test_alpha_equals_a_direct_computation_on_the_raw_label_matrix(babe, babe_dir: Path) -> None:
    raw = pd.read_csv(babe_dir / "raw_labels_SG2.csv", sep=";")
    matrix = raw.pivot_table(
        index="annotator_id", columns="text", values="Label_bias_0-1", aggfunc="first"
    )
    direct = krippendorff.alpha(reliability_data=matrix.to_numpy(), level_of_measurement="nominal")
    report = agreement_report(babe.ratings, "binary", passages=babe.passages, n_boot=200)
    assert abs(report["alpha"] - direct) < 0.01
    assert report["ci_low"] < report["alpha"] < report["ci_high"]
    assert report["alpha"] == pytest.approx(0.40, abs=0.02)  # the published SG2 figure


@pytest.mark.slow
def test_publisher_effects_are_ordered_like_raw_biased_rates(babe) -> None:
    """Spearman correlation between the posterior mean publisher effects (logit, average
    expert) and each outlet's raw share of 'biased' labels, over outlets with >= 30 sentences
    (the three tiny outlets are dominated by the prior), must be >= 0.9."""
    from assay.bias.bayes import BayesConfig, fit
    from assay.bias.effects import publisher_effects

    result = fit(babe.ratings, "binary", BayesConfig(draws=300, tune=300, chains=4, seed=1))
    effects = pd.DataFrame(publisher_effects(result, babe.ratings)[0])
    big = effects[effects["n_passages"] >= 30]
    rho = stats.spearmanr(big["mean"], big["raw_mean_rating"]).statistic
    assert len(big) == 9
    assert rho >= 0.9, big[["publisher", "mean", "raw_mean_rating"]]
