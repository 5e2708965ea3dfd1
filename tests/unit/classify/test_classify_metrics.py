"""Metrics on hand-computed cases, the corrected CI, and the clinical threshold rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.classify import names
from assay.classify.metrics import (
    Confusion,
    brier_score,
    choose_threshold,
    confusion_metrics,
    metric_scale,
    score_all,
    summarize,
)
from assay.classify.models import MODELS

# 10 cases: 4 malignant, 6 benign. Predictions give tp=3, fn=1, fp=1, tn=5.
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.0])


def test_confusion_counts() -> None:
    c = Confusion.from_predictions(Y, P >= 0.5)
    assert (c.tn, c.fp, c.fn, c.tp) == (5, 1, 1, 3)
    assert c.matrix() == [[5, 1], [1, 3]]


def test_threshold_metrics_by_hand() -> None:
    m = confusion_metrics(Confusion(tn=5, fp=1, fn=1, tp=3))
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["ppv"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (15-1)/sqrt(4*4*6*6) = 14/24
    assert m["mcc"] == pytest.approx(14 / 24)


def test_brier_by_hand() -> None:
    # squared errors: .01 .04 .16 .49 | .49 .16 .04 .01 .01 0 -> sum 1.41
    assert brier_score(Y, P) == pytest.approx(1.41 / 10)


def test_empty_denominators_are_undefined_not_zero() -> None:
    """No positive prediction: PPV (0/0) and MCC (an empty column) are undefined; sensitivity
    (0/4) and F1 (0/4) are a true 0; NPV and specificity are defined."""
    m = confusion_metrics(Confusion(tn=6, fp=0, fn=4, tp=0))
    assert math.isnan(m["ppv"]) and math.isnan(m["mcc"])
    assert m["sensitivity"] == 0.0 and m["f1"] == 0.0
    assert m["specificity"] == 1.0 and m["npv"] == pytest.approx(6 / 10)
    assert m["accuracy"] == pytest.approx(6 / 10)


def test_no_malignant_row_leaves_sensitivity_undefined() -> None:
    m = confusion_metrics(Confusion(tn=5, fp=1, fn=0, tp=0))
    assert math.isnan(m["sensitivity"]) and m["ppv"] == 0.0  # 0 / 1 false alarm
    assert m["f1"] == 0.0 and m["specificity"] == pytest.approx(5 / 6)  # F1 = 0 / (0 + 1 + 0)
    only_benign = confusion_metrics(Confusion(tn=6, fp=0, fn=0, tp=0))
    assert math.isnan(only_benign["f1"]) and only_benign["specificity"] == 1.0
    assert all(math.isnan(v) for v in confusion_metrics(Confusion(0, 0, 0, 0)).values())


def test_a_fold_summary_averages_the_folds_where_a_metric_is_defined() -> None:
    from assay.classify.metrics import summarize

    s = summarize([0.8, float("nan"), 0.9], n_train=100, n_test=25)
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.85)


def test_score_all_ranks_and_threshold() -> None:
    s = score_all(Y, P)
    # pairs (malignant, benign) ranked correctly: 0.9,0.8 beat all 6; 0.6 beats 5; 0.3 beats 4
    assert s["roc_auc"] == pytest.approx((6 + 6 + 5 + 4) / 24)
    assert s["sensitivity"] == pytest.approx(0.75)
    assert score_all(Y, P, threshold=0.25)["sensitivity"] == 1.0


def test_summarize_corrected_interval_on_the_plain_scale() -> None:
    from scipy import stats

    values = [0.90, 0.92, 0.94, 0.96]
    s = summarize(values, n_train=80, n_test=20, scale="identity")
    sd = float(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, 3) * math.sqrt((1 / 4 + 20 / 80) * sd**2)
    assert s["mean"] == pytest.approx(0.93)
    assert s["std"] == pytest.approx(sd)
    assert s["ci_low"] == pytest.approx(0.93 - half)
    assert s["ci_high"] == pytest.approx(0.93 + half)


def test_summarize_builds_the_interval_on_the_logit_scale() -> None:
    """Delta method by hand: logit(m) +- t * SE / (m (1 - m)), then back through the logistic."""
    from scipy import stats
    from scipy.special import expit, logit

    values = [0.90, 0.92, 0.94, 0.96]
    s = summarize(values, n_train=80, n_test=20)
    se = math.sqrt(1 / 4 + 20 / 80) * float(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, 3) * se / (0.93 * 0.07)
    assert s["ci_low"] == pytest.approx(expit(logit(0.93) - half))
    assert s["ci_high"] == pytest.approx(expit(logit(0.93) + half))


def test_an_auc_near_one_gets_an_upper_bound_below_one_not_a_clip() -> None:
    values = [1.0, 1.0, 0.97, 1.0, 0.98, 1.0, 0.99, 0.96]
    plain = summarize(values, n_train=455, n_test=114, scale="identity")
    assert plain["ci_high"] > 1.0  # what the old interval clipped to exactly 1.0
    s = summarize(values, n_train=455, n_test=114, scale=metric_scale("roc_auc"))
    assert s["ci_low"] < s["mean"] < s["ci_high"] < 1.0
    assert s["ci_high"] - s["mean"] < s["mean"] - s["ci_low"]  # skewed away from the bound


def test_mcc_interval_may_go_negative_and_stays_above_minus_one() -> None:
    values = [0.1, -0.2, 0.3, -0.1, 0.0, 0.2]
    s = summarize(values, n_train=100, n_test=20, scale=metric_scale("mcc"))
    assert metric_scale("mcc") == "fisher_z"
    assert -1.0 < s["ci_low"] < 0.0 < s["ci_high"] < 1.0
    centre = math.atanh(s["mean"])
    assert math.atanh(s["ci_high"]) - centre == pytest.approx(centre - math.atanh(s["ci_low"]))


def test_every_fold_perfect_gives_a_point_interval() -> None:
    s = summarize([1.0, 1.0, 1.0], n_train=100, n_test=50)
    assert (s["ci_low"], s["mean"], s["ci_high"]) == (1.0, 1.0, 1.0)


def test_threshold_is_highest_reaching_target() -> None:
    t = choose_threshold(Y, P, target_sensitivity=0.75)
    assert t.threshold == 0.6 and t.sensitivity == 0.75
    assert t.specificity == pytest.approx(5 / 6)
    full = choose_threshold(Y, P, target_sensitivity=1.0)
    assert full.threshold == 0.3 and full.sensitivity == 1.0
    assert full.specificity == pytest.approx(4 / 6)  # 0.7 and 0.4 are now called malignant
    assert full.specificity_at_default - full.specificity == pytest.approx(1 / 6)


def test_the_light_name_lists_match_the_metrics_and_models_they_name() -> None:
    """The CLI reads classify.names without loading scikit-learn; they must not drift apart."""
    assert tuple(MODELS) == names.MODEL_KEYS
    assert tuple(score_all(Y, P)) == names.METRIC_NAMES
