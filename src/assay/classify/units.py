"""The two kinds of work unit the CV runs (as Ray tasks, or inline in tests).

* ``prepare_bundle``: for one outer split, fit the preprocessor on its training rows and on each
  inner split's training rows (nested tuning) -- shared by every model.
* ``run_model_unit``: one model x one outer split: the nested search over its candidates (every
  trial fitted on inner-training rows, scored on inner-validation rows), then the best candidate
  refitted on the outer training rows and scored on the outer validation rows. The best
  candidate's inner out-of-fold scores (kept from the search, not refitted) train the split's
  calibrator (``assay.classify.calibration``) and, calibrated, choose its clinical threshold.

Random states come from ``derive_seed(seed, ...identity)`` only, so results do not depend on which
worker runs a unit or when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from assay.classify import calibration
from assay.classify.export import serving_pipeline
from assay.classify.folds import inner_folds
from assay.classify.metrics import oriented, score_all
from assay.classify.models import MODELS
from assay.classify.preprocess import prepare_split
from assay.classify.seeds import derive_seed
from assay.classify.shared_fits import FitMemo, fit_candidate

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
    p_test: NDArray[np.float64]  # the uncalibrated classifier's P(malignant): oof.csv, leaderboard
    best_params: dict[str, Any]
    candidate_scores: list[float]
    fit_seconds: float
    tune_seconds: float
    latency_seconds: list[float]
    selected: list[int]
    n_train: int
    p_calibrated: NDArray[np.float64]  # the served (calibrated) P(malignant) of the test rows
    inner_y: NDArray[np.int64]  # outcomes of the outer training rows, in inner-fold order
    inner_score: NDArray[np.float64]  # their inner out-of-fold calibration scores
    inner_p_calibrated: NDArray[np.float64]  # ... and calibrated P(malignant)
    calibrator: dict[str, float]
    cpu_seconds: float = 0.0  # CPU time of the whole unit in its process (work, not wall)
    pipeline: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Tuned:
    """The nested search's outcome: the chosen candidate, every candidate's mean inner score, and
    the chosen candidate's inner out-of-fold outcomes and calibration scores (the inner
    validation rows together are the outer training rows, each once)."""

    params: dict[str, Any]
    scores: list[float]
    inner_y: NDArray[np.int64]
    inner_score: NDArray[np.float64]


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


def _inner_predictions(
    key: str,
    params: dict[str, Any],
    candidates: list[dict[str, Any]],
    inner: list[PreparedSplit],
    random_state: int,
    memo: FitMemo,
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
    """One candidate fitted on each inner split: (P(malignant), calibration score) of its
    validation rows, per split. Fits that another candidate of this unit shares on the same rows
    come from ``memo`` (``assay.classify.shared_fits``)."""
    probas, scores = [], []

    def build(p: Any) -> Any:
        return MODELS[key].build(dict(p), random_state)

    for s in inner:
        model = fit_candidate(build, params, candidates, s.X_fit, s.y_fit, memo)
        proba = np.asarray(model.predict_proba(s.X_test)[:, 1], dtype=np.float64)
        probas.append(proba)
        scores.append(calibration.score(model, s.X_test, proba))
    return probas, scores


def tune(
    key: str,
    candidates: list[dict[str, Any]],
    inner: list[PreparedSplit],
    random_state: int,
    metric: str,
) -> Tuned:
    """Mean inner-validation score of each candidate; the first best one wins ties.

    A candidate that cannot be fitted on these splits (e.g. more kNN neighbours than rows in a
    tiny data set) scores NaN and is skipped, like scikit-learn's ``error_score=np.nan``.
    """
    scores: list[float] = []
    oof: dict[int, list[NDArray[np.float64]]] = {}
    failure: ValueError | None = None
    memo = FitMemo()
    for index, params in enumerate(candidates):
        try:
            probas, oof[index] = _inner_predictions(
                key, params, candidates, inner, random_state, memo
            )
            per_split = [score_one(metric, s.y_test, p) for s, p in zip(inner, probas, strict=True)]
            scores.append(float(np.mean(per_split)))
        except ValueError as exc:
            failure = exc
            scores.append(float("nan"))
    usable = [i for i, v in enumerate(scores) if np.isfinite(v)]
    if not usable:
        raise failure or ValueError(f"no candidate of {key} could be scored")
    best = max(usable, key=lambda i: (scores[i], -i))
    return Tuned(
        params=candidates[best],
        scores=scores,
        inner_y=np.concatenate([s.y_test for s in inner]).astype(np.int64),
        inner_score=np.concatenate(oof[best]),
    )


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
    """Nested search on the bundle's inner splits, calibrator from the chosen candidate's inner
    out-of-fold scores, then the refit on the outer training rows, served calibrated."""
    outer = bundle.outer
    random_state = derive_seed(seed, "model", key, outer.fold_id)
    cpu_start = time.process_time()
    with threadpool_limits(1):
        start = time.perf_counter()
        tuned = tune(key, candidates, bundle.inner, random_state, metric)
        calibrator = calibration.fit_calibrator(tuned.inner_score, tuned.inner_y)
        tuned_at = time.perf_counter()
        classifier = _fit(key, tuned.params, random_state, outer.X_fit, outer.y_fit)
        fit_seconds = time.perf_counter() - tuned_at
        pipeline = serving_pipeline(
            outer.preprocessor,
            calibration.calibrated_classifier(classifier, calibrator, outer.X_fit, outer.y_fit),
            X[bundle.train_rows],
            with_imputer=bool(np.isnan(X).any()),
        )
        X_test = X[outer.test_rows]
        p_raw = classifier.predict_proba(outer.X_test)[:, 1] if len(X_test) else np.empty(0)
        p_served = pipeline.predict_proba(X_test)[:, 1] if len(X_test) else np.empty(0)
        latencies = _latencies(pipeline, X_test)
    return UnitResult(
        model=key,
        fold_id=outer.fold_id,
        repeat=outer.repeat,
        test_rows=outer.test_rows,
        y_test=outer.y_test,
        p_test=np.asarray(p_raw, dtype=np.float64),
        best_params=tuned.params,
        candidate_scores=tuned.scores,
        fit_seconds=fit_seconds,
        tune_seconds=tuned_at - start,
        latency_seconds=latencies,
        selected=[int(i) for i in outer.selected],
        n_train=len(bundle.train_rows),
        p_calibrated=np.asarray(p_served, dtype=np.float64),
        inner_y=tuned.inner_y,
        inner_score=tuned.inner_score,
        inner_p_calibrated=calibration.calibrated_probability(calibrator, tuned.inner_score),
        calibrator=calibration.sigmoid_params(calibrator),
        cpu_seconds=time.process_time() - cpu_start,
        pipeline=pipeline if keep_pipeline else None,
    )
