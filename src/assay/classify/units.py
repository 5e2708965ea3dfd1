"""The two kinds of work unit the CV runs (as Ray tasks, or inline in tests).

* ``prepare_bundle``: for one outer split, fit the preprocessor on its training rows and on each
  inner split's training rows (nested tuning) -- shared by every model.
* ``run_model_unit``: one model x one outer split: the nested search over its candidates (every
  trial fitted on inner-training rows, scored on inner-validation rows), then the best candidate
  refitted on the outer training rows and scored on the outer validation rows.

Random states come from ``derive_seed(seed, ...identity)`` only, so results do not depend on which
worker runs a unit or when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from assay.classify.export import serving_pipeline
from assay.classify.folds import inner_folds
from assay.classify.metrics import oriented, score_all
from assay.classify.models import MODELS
from assay.classify.preprocess import prepare_split
from assay.classify.seeds import derive_seed

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from assay.classify.folds import Fold
    from assay.classify.preprocess import PreparedSplit

LATENCY_ROWS = 5  # single-row predictions timed per unit (served pipeline, predict_proba)


@dataclass(frozen=True)
class Bundle:
    """An outer split prepared once, with its inner splits, for all models and trials."""

    outer: PreparedSplit
    inner: list[PreparedSplit]
    train_rows: NDArray[np.intp]


@dataclass
class UnitResult:
    model: str
    fold_id: str
    repeat: int
    test_rows: NDArray[np.intp]
    y_test: NDArray[np.int64]
    p_test: NDArray[np.float64]
    best_params: dict[str, Any]
    candidate_scores: list[float]
    fit_seconds: float
    tune_seconds: float
    latency_seconds: list[float]
    selected: list[int]
    n_train: int
    cpu_seconds: float = 0.0  # CPU time of the whole unit in its process (work, not wall)
    pipeline: Any = field(default=None, repr=False)


def prepare_bundle(
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    fold: Fold,
    inner_n: int,
    k_features: int,
    seed: int,
) -> Bundle:
    with threadpool_limits(1):
        outer = prepare_split(X, y, fold, k_features, seed)
        inner = [
            prepare_split(X, y, f, k_features, seed) for f in inner_folds(fold, y, inner_n, seed)
        ]
    return Bundle(outer=outer, inner=inner, train_rows=fold.train)


def score_one(metric: str, y_true: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    """One metric, oriented so that higher is better."""
    return oriented(metric, score_all(y_true, p)[metric])


def _fit(key: str, params: dict[str, Any], random_state: int, X: Any, y: Any) -> Any:
    return MODELS[key].build(dict(params), random_state).fit(X, y)


def tune(
    key: str,
    candidates: list[dict[str, Any]],
    inner: list[PreparedSplit],
    random_state: int,
    metric: str,
) -> tuple[dict[str, Any], list[float]]:
    """Mean inner-validation score of each candidate; the first best one wins ties.

    A candidate that cannot be fitted on these splits (e.g. more kNN neighbours than rows in a
    tiny data set) scores NaN and is skipped, like scikit-learn's ``error_score=np.nan``.
    """
    scores: list[float] = []
    failure: ValueError | None = None
    for params in candidates:
        try:
            per_split = [
                score_one(
                    metric,
                    s.y_test,
                    _fit(key, params, random_state, s.X_fit, s.y_fit).predict_proba(s.X_test)[:, 1],
                )
                for s in inner
            ]
            scores.append(float(np.mean(per_split)))
        except ValueError as exc:
            failure = exc
            scores.append(float("nan"))
    usable = [i for i, v in enumerate(scores) if np.isfinite(v)]
    if not usable:
        raise failure or ValueError(f"no candidate of {key} could be scored")
    best = max(usable, key=lambda i: (scores[i], -i))
    return candidates[best], scores


def _latencies(pipeline: Any, rows: NDArray[np.float64]) -> list[float]:
    out = []
    for i in range(min(LATENCY_ROWS, len(rows))):
        row = rows[i : i + 1]
        start = time.perf_counter()
        pipeline.predict_proba(row)
        out.append(time.perf_counter() - start)
    return out


def run_model_unit(
    key: str,
    bundle: Bundle,
    X: NDArray[np.float64],
    candidates: list[dict[str, Any]],
    seed: int,
    metric: str,
    keep_pipeline: bool = False,
) -> UnitResult:
    """Nested search on the bundle's inner splits, then refit on its outer training rows."""
    outer = bundle.outer
    random_state = derive_seed(seed, "model", key, outer.fold_id)
    cpu_start = time.process_time()
    with threadpool_limits(1):
        start = time.perf_counter()
        if len(candidates) > 1:
            best, scores = tune(key, candidates, bundle.inner, random_state, metric)
        else:
            best, scores = candidates[0], [float("nan")]
        tuned = time.perf_counter()
        classifier = _fit(key, best, random_state, outer.X_fit, outer.y_fit)
        fit_seconds = time.perf_counter() - tuned
        pipeline = serving_pipeline(
            outer.preprocessor,
            classifier,
            X[bundle.train_rows],
            with_imputer=bool(np.isnan(X).any()),
        )
        X_test = X[outer.test_rows]
        p_test = pipeline.predict_proba(X_test)[:, 1] if len(X_test) else np.empty(0)
        latencies = _latencies(pipeline, X_test)
    return UnitResult(
        model=key,
        fold_id=outer.fold_id,
        repeat=outer.repeat,
        test_rows=outer.test_rows,
        y_test=outer.y_test,
        p_test=np.asarray(p_test, dtype=np.float64),
        best_params=best,
        candidate_scores=scores,
        fit_seconds=fit_seconds,
        tune_seconds=tuned - start,
        latency_seconds=latencies,
        selected=[int(i) for i in outer.selected],
        n_train=len(bundle.train_rows),
        cpu_seconds=time.process_time() - cpu_start,
        pipeline=pipeline if keep_pipeline else None,
    )
