"""Calibration and the clinical operating point: learned from inner out-of-fold data only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from assay.classify import calibration
from assay.classify.metrics import choose_threshold
from assay.classify.operating_point import fold_row
from assay.classify.units import UnitResult


def _unit(inner_p: np.ndarray, inner_y: np.ndarray, p: np.ndarray, y: np.ndarray) -> UnitResult:
    return UnitResult(
        model="logistic_regression",
        fold_id="r0f0",
        repeat=0,
        test_rows=np.arange(len(y)),
        y_test=y,
        p_test=p,
        best_params={},
        candidate_scores=[],
        fit_seconds=0.0,
        tune_seconds=0.0,
        latency_seconds=[],
        selected=[],
        n_train=len(inner_y),
        p_calibrated=p,
        inner_y=inner_y,
        inner_score=logit(inner_p),
        inner_p_calibrated=inner_p,
        calibrator={"a": -1.0, "b": 0.0},
    )


def test_fold_threshold_is_chosen_on_inner_oof_and_scored_on_the_held_out_fold() -> None:
    rng = np.random.default_rng(0)
    inner_y = rng.integers(0, 2, 300)
    inner_p = np.clip(0.5 * inner_y + rng.uniform(0, 0.5, 300), 0.01, 0.99)
    y = rng.integers(0, 2, 100)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 100), 0.01, 0.99)
    unit = _unit(inner_p, inner_y, p, y)
    row = fold_row(unit, 0.98)
    expected = choose_threshold(inner_y, inner_p, 0.98).threshold
    assert row["threshold"] == expected
    assert row["threshold"] != choose_threshold(y, p, 0.98).threshold  # the held-out choice differs
    called = p >= expected
    assert (row["tp"], row["fn"]) == (
        int(np.sum(called & (y == 1))),
        int(np.sum(~called & (y == 1))),
    )
    assert (row["fp"], row["tn"]) == (
        int(np.sum(called & (y == 0))),
        int(np.sum(~called & (y == 0))),
    )
    # the held-out rows do not move the threshold
    shuffled = replace(unit, p_calibrated=rng.permutation(p), p_test=rng.permutation(p))
    assert fold_row(shuffled, 0.98)["threshold"] == expected


def test_calibration_line_recovers_a_known_slope_and_intercept() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 20000)
    y = rng.random(20000) < expit(0.5 + 2.0 * logit(p))
    line = calibration.calibration_line(y, p)
    assert line["slope"] == pytest.approx(2.0, abs=0.1)
    assert line["intercept"] == pytest.approx(0.5, abs=0.1)
    perfect = calibration.calibration_line(rng.random(20000) < p, p)
    assert perfect["slope"] == pytest.approx(1.0, abs=0.08)
    assert perfect["intercept"] == pytest.approx(0.0, abs=0.08)


def test_calibration_line_of_one_class_is_nan() -> None:
    line = calibration.calibration_line(np.ones(5), np.full(5, 0.7))
    assert np.isnan(line["slope"]) and np.isnan(line["intercept"])


@pytest.mark.parametrize(
    "classifier",
    [LogisticRegression(C=100.0), RandomForestClassifier(n_estimators=30, random_state=0)],
    ids=["decision_function", "predict_proba"],
)
def test_calibrated_classifier_equals_sklearn_sigmoid_fitted_on_the_given_scores(
    classifier: object,
) -> None:
    """Fitted on given (inner out-of-fold) scores, it predicts what scikit-learn's own
    CalibratedClassifierCV(FrozenEstimator) predicts when fitted on rows with those scores (the
    same Platt optimum, to the optimiser's tolerance), and its reported sigmoid is exact."""
    X, y = make_classification(600, 8, weights=[0.7], random_state=3)
    fitted = classifier.fit(X[:300], y[:300])  # type: ignore[attr-defined]
    X_cal, y_cal, X_new = X[300:500], y[300:500], X[500:]
    raw = fitted.predict_proba(X_cal)[:, 1]
    calibrator = calibration.fit_calibrator(calibration.score(fitted, X_cal, raw), y_cal)
    ours = calibration.calibrated_classifier(fitted, calibrator, X[:300], y[:300])
    reference = CalibratedClassifierCV(FrozenEstimator(fitted), method="sigmoid").fit(X_cal, y_cal)
    np.testing.assert_allclose(ours.predict_proba(X_new), reference.predict_proba(X_new), atol=1e-6)
    new_raw = fitted.predict_proba(X_new)[:, 1]
    sigmoid = calibration.sigmoid_params(calibrator)
    new_score = calibration.score(fitted, X_new, new_raw)
    expected = expit(-(sigmoid["a"] * new_score + sigmoid["b"]))
    np.testing.assert_allclose(ours.predict_proba(X_new)[:, 1], expected, rtol=1e-9)
    assert not np.allclose(ours.predict_proba(X_new)[:, 1], new_raw)  # not the raw output
