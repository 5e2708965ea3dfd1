"""Probability calibration learned inside the training folds, and how calibration is measured.

The classifiers are fitted on SMOTE-balanced rows, so their P(malignant) is too extreme and shifted
towards the balanced prior. Each training split therefore gets a Platt (sigmoid) calibrator fitted
on its INNER out-of-fold scores -- the scores the nested search already produced for the chosen
candidate, never the rows the calibrated model is then scored on.

Why sigmoid, not isotonic: a few hundred inner out-of-fold rows per split (a few dozen near the
decision region) are too few for a step function without overfitting; isotonic output has ties,
which change the ranking (ROC-AUC) and put the 98%-sensitivity threshold on plateaus; and the
miscalibration seen here (slope > 1, intercept shifted by the balanced prior) is exactly the
two-parameter logistic kind. The sigmoid is monotone, so ranking and ROC-AUC are unchanged.

The exported calibrated classifier is scikit-learn's own ``CalibratedClassifierCV(FrozenEstimator(
classifier), method="sigmoid")``, with the sigmoid fitted on the inner out-of-fold scores (scikit-
learn would fit it on the frozen model's in-sample scores). Its score is scikit-learn's choice:
``decision_function`` when the classifier has one, otherwise ``predict_proba[:, 1]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, special
from sklearn.calibration import (
    CalibratedClassifierCV,
    _CalibratedClassifier,
    _SigmoidCalibration,
)
from sklearn.frozen import FrozenEstimator

from assay.classify.metrics import brier_score

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

METHOD = "sigmoid"
LOGIT_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] before logit(p)
DESCRIPTION = (
    "Platt sigmoid (scikit-learn CalibratedClassifierCV method='sigmoid') fitted on each training "
    "split's inner out-of-fold scores of the chosen candidate; applied to that split's held-out "
    "rows. Exported as CalibratedClassifierCV(FrozenEstimator(classifier)) inside the Pipeline."
)
SLOPE_DEFINITION = (
    "logistic regression of the held-out outcome on logit(p) (p clipped to [1e-6, 1 - 1e-6]): "
    "y ~ intercept + slope * logit(p); perfect calibration is slope 1, intercept 0"
)


def score(classifier: Any, X: ArrayLike, p: NDArray[np.float64]) -> NDArray[np.float64]:
    """The score a sigmoid calibrator sees: decision_function if present, else ``p``.

    ``p`` is the classifier's P(class 1) on ``X``, already computed by the caller.
    """
    if hasattr(classifier, "decision_function"):
        return np.asarray(classifier.decision_function(X), dtype=np.float64).ravel()
    return np.asarray(p, dtype=np.float64)


def fit_sigmoid(scores: ArrayLike, y: ArrayLike) -> Any:
    """scikit-learn's Platt sigmoid, fitted on (inner out-of-fold) scores and outcomes."""
    return _SigmoidCalibration().fit(np.asarray(scores, dtype=np.float64), np.asarray(y))


def calibrated_classifier(classifier: Any, sigmoid: Any) -> CalibratedClassifierCV:
    """A fitted ``CalibratedClassifierCV`` serving ``sigmoid(score(classifier, X))``.

    Built directly rather than by ``fit`` because ``fit`` would learn the sigmoid from the frozen
    model's in-sample scores. The inner calibrated classifier holds the bare classifier (not the
    FrozenEstimator) so skl2onnx can compile it for the server.
    """
    model = CalibratedClassifierCV(FrozenEstimator(classifier), method=METHOD)
    model.classes_ = np.asarray(classifier.classes_)
    model.calibrated_classifiers_ = [
        _CalibratedClassifier(classifier, [sigmoid], classes=model.classes_, method=METHOD)
    ]
    model.n_features_in_ = classifier.n_features_in_
    return model


def sigmoid_params(sigmoid: Any) -> dict[str, float]:
    """The fitted calibrator: P = 1 / (1 + exp(a * score + b))."""
    return {"a": float(sigmoid.a_), "b": float(sigmoid.b_)}


def calibration_line(y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """Calibration intercept and slope (see SLOPE_DEFINITION), by maximum likelihood.

    NaN when the outcome has one class or the fit does not converge (e.g. perfect separation).
    """
    y = np.asarray(y_true, dtype=np.float64)
    z = special.logit(np.clip(np.asarray(p, dtype=np.float64), LOGIT_EPS, 1 - LOGIT_EPS))
    nan = {"intercept": float("nan"), "slope": float("nan")}
    if len(y) == 0 or y.min() == y.max():
        return nan

    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        eta = theta[0] + theta[1] * z
        value = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        residual = special.expit(eta) - y
        return value, np.array([residual.sum(), residual @ z])

    fit = optimize.minimize(loss, np.array([0.0, 1.0]), jac=True, method="L-BFGS-B")
    if not fit.success or abs(fit.x[1]) > 1e3:
        return nan
    return {"intercept": float(fit.x[0]), "slope": float(fit.x[1])}


def calibration_summary(y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """Intercept, slope and Brier score of one set of held-out predictions."""
    return {**calibration_line(y_true, p), "brier": brier_score(y_true, p)}
