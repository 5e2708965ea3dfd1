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
