"""Sub-estimator fits shared between the tuning candidates of one work unit.

The composite models (soft voting, stacking) are tuned over parameters of some of their
sub-estimators only, so candidates of one unit refit identical sub-estimators on identical rows:
stacking's logistic regression and 50 extra trees (on the inner split and on each of its own three
stacking folds) are the same for every candidate; soft voting's three candidates share two of
three values of each sub-estimator's parameter. ``share_sub_fits`` wraps each sub-estimator so
that a fit whose estimator parameters and training rows were already seen in this unit returns
that earlier fitted estimator instead of fitting again. Likewise AdaBoost candidates that differ
only in ``n_estimators`` share one fit: the longest, whose first ``n`` stages are exactly the fit
with ``n`` stages (the stages are drawn in order from the same random state, and nothing a stage
computes depends on how many follow), so ``first_stages`` serves the shorter candidates.

Each fit is deterministic (fixed integer random states, one thread), so a shared fit is the very
estimator the repeated fit would produce: predictions are bit-identical, and each is still
fitted only on the rows scikit-learn hands it (the inner-training rows, or a stacking fold of
them). Only the tuning uses this; the outer refit that is scored and served is a plain
scikit-learn model.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import AdaBoostClassifier

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


class FitMemo:
    """Fitted sub-estimators of one unit, keyed by estimator parameters and training rows."""

    def __init__(self) -> None:
        self._fitted: dict[tuple[str, str, str], Any] = {}
        self.fits = 0  # fits actually run
        self.reused = 0  # fits answered from the memo

    def __deepcopy__(self, memo: dict[int, Any]) -> FitMemo:
        # scikit-learn's clone() deep-copies non-estimator parameters; the memo must stay shared.
        return self

    def fitted(self, estimator: Any, X: ArrayLike, y: ArrayLike) -> Any:
        key = (_describe(estimator), _digest(X), _digest(y))
        if key in self._fitted:
            self.reused += 1
            return self._fitted[key]
        self.fits += 1
        model = clone(estimator).fit(X, y)
        self._fitted[key] = model
        return model


class SharedFit(ClassifierMixin, BaseEstimator):
    """A classifier whose ``fit`` goes through a ``FitMemo``; predicts like the fitted one."""

    def __init__(self, estimator: Any, memo: FitMemo) -> None:
        self.estimator = estimator
        self.memo = memo

    def fit(self, X: ArrayLike, y: ArrayLike) -> SharedFit:
        self.fitted_ = self.memo.fitted(self.estimator, X, y)
        self.classes_ = self.fitted_.classes_
        self.n_features_in_ = self.fitted_.n_features_in_
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        return np.asarray(self.fitted_.predict_proba(X))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        return np.asarray(self.fitted_.predict(X))


def share_sub_fits(model: Any, memo: FitMemo) -> Any:
    """``model`` with each sub-estimator (``model.estimators``) fitted through ``memo``; a model
    without sub-estimators is returned unchanged. The final estimator of a stacking model is not
    shared (its inputs differ whenever any sub-estimator's parameters do)."""
    if not hasattr(model, "estimators"):
        return model
    wrapped = [(name, SharedFit(est, memo)) for name, est in model.estimators]
    return model.set_params(estimators=wrapped)


def fit_candidate(
    build: Any,
    params: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    X: ArrayLike,
    y: ArrayLike,
    memo: FitMemo,
) -> Any:
    """``build(params)`` fitted on (X, y), sharing what ``memo`` already holds: sub-estimator fits
    of composite models, and for AdaBoost the longest candidate with otherwise equal parameters."""
    model = build(params)
    if not isinstance(model, AdaBoostClassifier):
        return share_sub_fits(model, memo).fit(X, y)
    longest = max(
        (c["n_estimators"] for c in candidates if _same_but_stages(c, params)),
        default=model.n_estimators,
    )
    fitted = memo.fitted(build({**params, "n_estimators": longest}), X, y)
    return first_stages(fitted, model.n_estimators)


def first_stages(boosted: AdaBoostClassifier, n: int) -> AdaBoostClassifier:
    """A fitted AdaBoost cut to its first ``n`` stages (itself when it has no more)."""
    if n >= boosted.n_estimators:
        return boosted
    short = copy.copy(boosted)
    short.n_estimators = n
    short.estimators_ = boosted.estimators_[:n]
    short.estimator_weights_ = boosted.estimator_weights_[:n].copy()
    short.estimator_errors_ = boosted.estimator_errors_[:n].copy()
    return short


def _same_but_stages(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if "n_estimators" not in a or "n_estimators" not in b:
        return False
    return {**a, "n_estimators": 0} == {**b, "n_estimators": 0}


def _describe(estimator: Any) -> str:
    params = estimator.get_params(deep=True)
    return f"{type(estimator).__qualname__}{sorted((k, repr(v)) for k, v in params.items())}"


def _digest(values: ArrayLike) -> str:
    array = np.ascontiguousarray(values)
    head = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.blake2b(head + array.tobytes(), digest_size=16).hexdigest()
