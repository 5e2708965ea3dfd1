"""A sigmoid-calibrated, thresholded export keeps the ONNX fast path for every classifier family
the selection rule can pick first, including those with a decision function (logistic regression,
histogram gradient boosting), whose score the compiled graph now outputs directly; on every WDBC
row its probabilities equal the joblib model's and its labels at the threshold equal the joblib
model's own ``predict()``."""

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
from assay.classify.export import with_threshold
from assay.serving.sklearn_predictor import build_proba

THRESHOLD = 0.3


def _calibrated_pipeline(classifier: Any) -> tuple[Pipeline, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    y = 1 - y  # malignant = 1
    scaler = StandardScaler().fit(X)
    features = scaler.transform(X)
    fitted = classifier.fit(features, y)
    p = fitted.predict_proba(features)[:, 1]
    calibrator = calibration.fit_calibrator(calibration.score(fitted, features, p), y)
    model = calibration.calibrated_classifier(fitted, calibrator, features, y)
    pipeline = Pipeline([("scaler", scaler), ("classifier", model)])
    return with_threshold(pipeline, THRESHOLD, X, y), X


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
    proba = build_proba(pipeline, threshold=THRESHOLD)
    assert proba.compiled is not None, "fell back to scikit-learn"
    np.testing.assert_allclose(
        proba.compiled(X), pipeline.predict_proba(X)[:, 1], atol=1e-5, rtol=0
    )
    labels = (proba(X) >= THRESHOLD).astype(int)
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    assert pipeline.named_steps["classifier"].threshold == THRESHOLD
