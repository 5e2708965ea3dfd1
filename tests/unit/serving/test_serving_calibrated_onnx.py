"""A sigmoid-calibrated export keeps the ONNX fast path for every classifier family the
selection rule can pick first, including those with a decision function (logistic regression,
histogram gradient boosting), whose score the compiled graph now outputs directly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import AdaBoostClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from assay.classify import calibration
from assay.serving.sklearn_predictor import build_proba


def _calibrated_pipeline(classifier: Any) -> tuple[Pipeline, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    y = 1 - y  # malignant = 1
    scaler = StandardScaler().fit(X)
    fitted = classifier.fit(scaler.transform(X), y)
    p = fitted.predict_proba(scaler.transform(X))[:, 1]
    sigmoid = calibration.fit_sigmoid(calibration.score(fitted, scaler.transform(X), p), y)
    model = calibration.calibrated_classifier(fitted, sigmoid)
    return Pipeline([("scaler", scaler), ("classifier", model)]), X


@pytest.mark.parametrize(
    "classifier",
    [
        LogisticRegression(C=10.0, max_iter=2000),
        HistGradientBoostingClassifier(max_iter=50, random_state=0),
        AdaBoostClassifier(n_estimators=50, random_state=0),
    ],
    ids=["logistic_regression", "hist_gradient_boosting", "adaboost"],
)
def test_a_calibrated_pipeline_is_served_by_onnx_and_equals_predict_proba(classifier: Any) -> None:
    pipeline, X = _calibrated_pipeline(classifier)
    proba = build_proba(pipeline, threshold=0.5)
    assert proba.compiled is not None, "fell back to scikit-learn"
    np.testing.assert_allclose(
        proba.compiled(X), pipeline.predict_proba(X)[:, 1], atol=1e-5, rtol=0
    )
