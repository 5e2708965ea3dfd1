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

Everything is fitted through scikit-learn's public API. ``CalibratedClassifierCV.fit`` computes the
scores it calibrates from its own estimator on the rows it is given; here the scores come from
other fits (the inner ones), so the calibrator is fitted on the score itself as a one-column
feature: ``CalibratedClassifierCV(FrozenEstimator(score_map), method="sigmoid")``, where
``score_map`` is a ``LogisticRegression`` of the outcome on the score, an affine map of the
score. Platt's sigmoid family is closed under affine maps, so the result is scikit-learn's own
Platt sigmoid of the raw score (the same optimum). The exported classifier is a
``StackingClassifier`` (``cv="prefit"``) that feeds the fitted classifier's score to that frozen
calibrator. The score is scikit-learn's choice: ``decision_function`` when the classifier has one,
otherwise ``predict_proba[:, 1]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, special
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from assay.classify.metrics import brier_score

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

METHOD = "sigmoid"
CLASSIFIER = "classifier"  # the fitted classifier's name inside the exported stack
LOGIT_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] before logit(p)
DESCRIPTION = (
    "Platt sigmoid (scikit-learn CalibratedClassifierCV method='sigmoid') fitted on each training "
    "split's inner out-of-fold scores of the chosen candidate; applied to that split's held-out "
    "rows. Exported inside the Pipeline as StackingClassifier(classifier, cv='prefit') feeding "
    "the classifier's score to the frozen CalibratedClassifierCV(method='sigmoid') fitted on "
    "those scores."
)
SLOPE_DEFINITION = (
    "logistic regression of the held-out outcome on logit(p) (p clipped to [1e-6, 1 - 1e-6]): "
    "y ~ intercept + slope * logit(p); perfect calibration is slope 1, intercept 0"
)


def response_method(classifier: Any) -> str:
    """The classifier output a sigmoid calibrator reads: its decision function if it has one."""
    return "decision_function" if hasattr(classifier, "decision_function") else "predict_proba"


def score(classifier: Any, X: ArrayLike, p: NDArray[np.float64]) -> NDArray[np.float64]:
    """The score a sigmoid calibrator sees: decision_function if present, else ``p``.

    ``p`` is the classifier's P(class 1) on ``X``, already computed by the caller.
    """
    if response_method(classifier) == "decision_function":
        return np.asarray(classifier.decision_function(X), dtype=np.float64).ravel()
    return np.asarray(p, dtype=np.float64)


def _column(scores: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(scores, dtype=np.float64).reshape(-1, 1)


def fit_calibrator(scores: ArrayLike, y: ArrayLike) -> CalibratedClassifierCV:
    """scikit-learn's Platt sigmoid of the score, fitted on (inner out-of-fold) scores and
    outcomes; its ``predict_proba`` takes the score as a one-column matrix."""
    column, outcome = _column(scores), np.asarray(y)
    score_map = LogisticRegression().fit(column, outcome)
    return CalibratedClassifierCV(FrozenEstimator(score_map), method=METHOD).fit(column, outcome)


def calibrated_probability(calibrator: Any, scores: ArrayLike) -> NDArray[np.float64]:
    """The calibrated P(class 1) of each score."""
    return np.asarray(calibrator.predict_proba(_column(scores))[:, 1], dtype=np.float64)


def calibrated_classifier(
    classifier: Any, calibrator: Any, X_fit: ArrayLike, y_fit: ArrayLike
) -> StackingClassifier:
    """The fitted ``classifier`` whose score goes through the fitted ``calibrator``.

    ``fit`` learns nothing here: the classifier is prefit and the calibrator frozen; it only runs
    them once on the classifier's own training rows (``X_fit``, ``y_fit``) to set up the stack.
    """
    stack = StackingClassifier(
        [(CLASSIFIER, classifier)],
        final_estimator=FrozenEstimator(calibrator),
        cv="prefit",
        stack_method=response_method(classifier),
    )
    return stack.fit(X_fit, y_fit)


def sigmoid_params(calibrator: Any) -> dict[str, float]:
    """The fitted calibrator as P = 1 / (1 + exp(a * score + b)), read off its predictions at
    scores 0 and 1 (to ~1e-16 / min(P, 1 - P) there: about 1e-10 while P stays in (1e-6, 1 - 1e-6)).
    """
    proba = calibrator.predict_proba(_column([0.0, 1.0]))
    minus_logit = np.log(proba[:, 0]) - np.log(proba[:, 1])  # = a * score + b
    return {"a": float(minus_logit[1] - minus_logit[0]), "b": float(minus_logit[0])}


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
