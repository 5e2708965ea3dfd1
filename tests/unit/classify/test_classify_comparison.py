"""The corrected paired t-test, Holm's adjustment and the selection rule on hand-made folds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assay.classify.comparison import (
    SIMPLICITY_ORDER,
    corrected_paired_t,
    holm,
    pairwise,
    select,
    simplest,
)
from assay.classify.models import MODELS

N_TRAIN, N_TEST = 455.0, 114.0


def _folds(scores: dict[str, list[float]], accuracy_shift: float = 0.0) -> pd.DataFrame:
    rows = [
        {
            "model": key,
            "fold_id": f"r0f{i:02d}",
            "n_train": N_TRAIN,
            "n_test": N_TEST,
            "roc_auc": value,
            "accuracy": value - accuracy_shift,
        }
        for key, values in scores.items()
        for i, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_paired_t_by_hand() -> None:
    a = [0.99, 0.97, 0.98, 1.00, 0.96]
    b = [0.98, 0.97, 0.96, 0.99, 0.96]
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) * math.sqrt(1 / 5 + N_TEST / N_TRAIN))
    test = corrected_paired_t(a, b, N_TRAIN, N_TEST)
    assert test.mean_difference == pytest.approx(d.mean())
    assert test.t == pytest.approx(t)
    assert test.p == pytest.approx(2 * stats.t.sf(abs(t), 4))


def test_without_the_correction_it_is_the_ordinary_paired_t() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.95, 0.02, 25), rng.normal(0.94, 0.02, 25)
    plain = stats.ttest_rel(a, b)
    test = corrected_paired_t(a, b, n_train=1.0, n_test=0.0)
    assert test.t == pytest.approx(plain.statistic) and test.p == pytest.approx(plain.pvalue)
    corrected = corrected_paired_t(a, b, N_TRAIN, N_TEST)
    assert corrected.p > test.p  # the correction widens: overlapping training sets


def test_identical_scores_are_not_different() -> None:
    same = corrected_paired_t([0.9, 0.95, 1.0], [0.9, 0.95, 1.0], N_TRAIN, N_TEST)
    assert same.p == 1.0 and same.t == 0.0


def test_holm_by_hand_and_against_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    p = [0.001, 0.2, 0.013, 0.04, 0.5, 0.0005]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_holm_on_the_textbook_example() -> None:
    """The Holm-Bonferroni example of Wikipedia ("Holm-Bonferroni method", Example): p = 0.01,
    0.04, 0.03, 0.005 for H1..H4 at alpha 0.05 rejects H4 and H1 only. Adjusted by hand:
    sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06."""
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [a < 0.05 for a in adjusted] == [True, False, False, True]


def test_holm_keeps_an_untestable_p_value_undefined_but_counts_it() -> None:
    adjusted = holm([0.01, float("nan"), 0.03, 0.005])
    assert math.isnan(adjusted[1])
    assert adjusted[0] == pytest.approx(0.03) and adjusted[3] == pytest.approx(0.02)  # m = 4
    assert holm([]) == []


def test_simplicity_order_covers_every_model_with_the_baseline_first() -> None:
    assert {k for k, _ in SIMPLICITY_ORDER} == set(MODELS)
    assert SIMPLICITY_ORDER[0][0] == "logistic_regression"
    assert simplest(["stacking", "adaboost", "random_forest"]) == "adaboost"


def test_the_baseline_is_selected_when_the_best_is_not_credibly_better() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.990, 0.006, 25)
    folds = _folds(
        {
            "stacking": list(base + rng.normal(0.001, 0.004, 25)),  # best by a hair
            "logistic_regression": list(base),
            "adaboost": list(base - 0.03 + rng.normal(0, 0.002, 25)),  # clearly worse
        }
    )
    s = select(folds, "roc_auc")
    assert s["best_by_mean"] == "stacking"
    assert s["indistinguishable"] == ["logistic_regression"]
    assert s["selected"] == "logistic_regression"
    assert s["p_holm_vs_best"]["adaboost"] < 0.05 <= s["p_holm_vs_best"]["logistic_regression"]
    assert {r["metric"] for r in s["pairwise"]} == {"roc_auc", "accuracy"}
    assert len(s["pairwise"]) == 2 * 3  # 3 pairs x 2 metrics
    assert "simplest" in s["rule"] and "baseline is eligible" in s["rule"]


def test_the_best_is_kept_when_it_is_credibly_better() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0.95, 0.01, 25)
    folds = _folds(
        {"stacking": list(base + 0.03), "logistic_regression": list(base + rng.normal(0, 1e-3, 25))}
    )
    s = select(folds, "roc_auc")
    assert s["selected"] == "stacking" and s["indistinguishable"] == []


def test_holm_is_applied_across_all_pairs() -> None:
    rng = np.random.default_rng(2)
    scores = {k: list(rng.normal(0.97, 0.01, 25)) for k in ("a_model", "b_model", "c_model")}
    rows = pairwise(_folds(scores), ["roc_auc"])
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p"] for r in rows]))
    assert all(r["p_holm"] >= r["p"] for r in rows)
