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


def test_empty_denominators_are_zero() -> None:
    m = confusion_metrics(Confusion(tn=6, fp=0, fn=4, tp=0))
    assert m["ppv"] == 0.0 and m["mcc"] == 0.0 and m["sensitivity"] == 0.0


def test_score_all_ranks_and_threshold() -> None:
    s = score_all(Y, P)
    # pairs (malignant, benign) ranked correctly: 0.9,0.8 beat all 6; 0.6 beats 5; 0.3 beats 4
    assert s["roc_auc"] == pytest.approx((6 + 6 + 5 + 4) / 24)
    assert s["sensitivity"] == pytest.approx(0.75)
    assert score_all(Y, P, threshold=0.25)["sensitivity"] == 1.0


def test_summarize_corrected_interval() -> None:
    from scipy import stats

    values = [0.90, 0.92, 0.94, 0.96]
    s = summarize(values, n_train=80, n_test=20)
    sd = float(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, 3) * math.sqrt((1 / 4 + 20 / 80) * sd**2)
    assert s["mean"] == pytest.approx(0.93)
    assert s["std"] == pytest.approx(sd)
    assert s["ci_low"] == pytest.approx(0.93 - half)
    assert s["ci_high"] == pytest.approx(min(1.0, 0.93 + half))


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
