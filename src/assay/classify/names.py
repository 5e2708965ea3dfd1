"""The names a training run is configured with, importable without scikit-learn or SciPy.

The CLI builds its options (choices, help) from these at start-up; ``classify.metrics`` and
``classify.models`` use the same tuples, and a unit test keeps ``MODEL_KEYS`` equal to the models
``classify.models`` defines.
"""

from __future__ import annotations

METRIC_NAMES: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "mcc",
    "brier",
)

THRESHOLD_FREE_METRICS = ("roc_auc", "pr_auc", "brier")
CUTOFF_METRICS: tuple[str, ...] = tuple(m for m in METRIC_NAMES if m not in THRESHOLD_FREE_METRICS)
"""Metrics that need a cut-off: in the leaderboard they are at 0.5 on the uncalibrated output,
not at the served (clinical) threshold."""
AT_CUTOFF_NOTE = (
    "accuracy, sensitivity, specificity, ppv, npv, f1 and mcc: cross-validated at the 0.5 "
    "cut-off of the uncalibrated classifier, NOT at the served threshold; brier: of the "
    "uncalibrated probabilities; clinical_*: at the served threshold's rule (heldout = "
    "out-of-sample estimate, apparent = scored on the predictions it was chosen on)"
)

UNDEFINED = "undefined"  # how a report shows a metric that has no value (NaN)
UNDEFINED_NOTE = (
    "a confusion-matrix metric whose denominator is empty (e.g. PPV with no positive "
    "prediction, MCC with an empty row or column) is undefined, not 0: NaN in the tables, null "
    "in metrics.json, 'undefined' in the report; a summary over folds averages the folds where "
    "it is defined and says how many (n)"
)

MODEL_KEYS: tuple[str, ...] = (
    "random_forest",
    "extra_trees",
    "adaboost",
    "gradient_boosting",
    "hist_gradient_boosting",
    "bagging",
    "soft_voting",
    "stacking",
    "logistic_regression",
)
