"""The candidate classifiers: 8 ensembles plus a logistic-regression baseline.

Each model has a builder ``(params, random_state) -> unfitted estimator`` and a small search space
(a grid the nested search samples ``tuning_iter`` candidates from). Sizes are kept moderate
(100 trees) so the whole repeated, nested protocol runs in minutes on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from assay.errors import UsageError

Params = dict[str, Any]
N_TREES = 100


@dataclass(frozen=True)
class ModelSpec:
    key: str
    label: str
    build: Callable[[Params, int], Any]
    space: Mapping[str, list[Any]] = field(default_factory=dict)
    baseline: bool = False
    relative_cost: float = 1.0  # rough fit cost, used only to schedule heavy work first


def _logreg(params: Params, random_state: int) -> Any:
    return LogisticRegression(max_iter=2000, random_state=random_state, **params)


def _random_forest(params: Params, random_state: int) -> Any:
    return RandomForestClassifier(n_estimators=N_TREES, random_state=random_state, **params)


def _extra_trees(params: Params, random_state: int) -> Any:
    return ExtraTreesClassifier(n_estimators=N_TREES, random_state=random_state, **params)


def _adaboost(params: Params, random_state: int) -> Any:
    return AdaBoostClassifier(random_state=random_state, **params)


def _gradient_boosting(params: Params, random_state: int) -> Any:
    return GradientBoostingClassifier(n_estimators=N_TREES, random_state=random_state, **params)


def _hist_gradient_boosting(params: Params, random_state: int) -> Any:
    return HistGradientBoostingClassifier(
        max_iter=N_TREES, early_stopping=False, random_state=random_state, **params
    )


def _bagging(params: Params, random_state: int) -> Any:
    return BaggingClassifier(
        estimator=DecisionTreeClassifier(), n_estimators=50, random_state=random_state, **params
    )


def _soft_voting(params: Params, random_state: int) -> Any:
    estimators = [
        ("lr", LogisticRegression(max_iter=2000, random_state=random_state)),
        ("et", ExtraTreesClassifier(n_estimators=N_TREES, random_state=random_state)),
        ("gb", GradientBoostingClassifier(n_estimators=N_TREES, random_state=random_state)),
    ]
    return VotingClassifier(estimators, voting="soft").set_params(**params)


def _stacking(params: Params, random_state: int) -> Any:
    estimators = [
        ("lr", LogisticRegression(max_iter=2000, random_state=random_state)),
        ("knn", KNeighborsClassifier()),
        ("et", ExtraTreesClassifier(n_estimators=N_TREES // 2, random_state=random_state)),
    ]
    return StackingClassifier(
        estimators,
        final_estimator=LogisticRegression(max_iter=2000, random_state=random_state),
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state),
        stack_method="predict_proba",
    ).set_params(**params)


MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec(
            "random_forest",
            "Random forest",
            _random_forest,
            {
                "max_depth": [None, 8],
                "max_features": ["sqrt", 0.5],
                "min_samples_leaf": [1, 3],
            },
            relative_cost=1.0,
        ),
        ModelSpec(
            "extra_trees",
            "Extra trees",
            _extra_trees,
            {
                "max_depth": [None, 8],
                "max_features": ["sqrt", 0.5],
                "min_samples_leaf": [1, 3],
            },
            relative_cost=0.7,
        ),
        ModelSpec(
            "adaboost",
            "AdaBoost",
            _adaboost,
            {"n_estimators": [50, 100], "learning_rate": [0.3, 1.0]},
            relative_cost=1.1,
        ),
        ModelSpec(
            "gradient_boosting",
            "Gradient boosting",
            _gradient_boosting,
            {"learning_rate": [0.05, 0.1], "max_depth": [2, 3], "subsample": [0.8, 1.0]},
            relative_cost=1.3,
        ),
        ModelSpec(
            "hist_gradient_boosting",
            "Histogram gradient boosting",
            _hist_gradient_boosting,
            {
                "learning_rate": [0.05, 0.1],
                "max_leaf_nodes": [7, 15],
                "l2_regularization": [0.0, 1.0],
            },
            relative_cost=0.8,
        ),
        ModelSpec(
            "bagging",
            "Bagging (decision trees)",
            _bagging,
            {"max_samples": [0.7, 1.0], "max_features": [0.7, 1.0]},
            relative_cost=1.0,
        ),
        ModelSpec(
            "soft_voting",
            "Soft voting (LR + ET + GB)",
            _soft_voting,
            {"lr__C": [0.1, 1.0], "gb__max_depth": [2, 3], "et__min_samples_leaf": [1, 3]},
            relative_cost=2.0,
        ),
        ModelSpec(
            "stacking",
            "Stacking (LR + kNN + ET50 -> LR)",
            _stacking,
            {"knn__n_neighbors": [5, 15], "final_estimator__C": [0.1, 1.0, 10.0]},
            relative_cost=2.5,
        ),
        ModelSpec(
            "logistic_regression",
            "Logistic regression (baseline)",
            _logreg,
            {"C": [0.01, 0.1, 1.0, 10.0]},
            baseline=True,
            relative_cost=0.1,
        ),
    )
}

ENSEMBLE_KEYS: tuple[str, ...] = tuple(k for k, s in MODELS.items() if not s.baseline)
ALL_KEYS: tuple[str, ...] = tuple(MODELS)


def get_spec(key: str) -> ModelSpec:
    try:
        return MODELS[key]
    except KeyError:
        raise UsageError(f"Unknown model {key!r}; choose from {', '.join(ALL_KEYS)}.") from None


def candidate_params(key: str, n: int, random_state: int) -> list[Params]:
    """``n`` distinct candidates drawn from the model's grid (all of it if smaller)."""
    space = dict(MODELS[key].space)
    if not space:
        return [{}]
    sampled = ParameterSampler(space, n_iter=n, random_state=random_state)
    return [_plain(p) for p in sampled]


def _plain(params: Mapping[str, Any]) -> Params:
    """numpy scalars -> Python scalars, so parameters serialise to JSON unchanged."""
    out: Params = {}
    for name, value in sorted(params.items()):
        out[name] = value.item() if hasattr(value, "item") else value
    return out
