"""Sub-estimator fits shared between tuning candidates: same predictions as fitting every candidate
from scratch, fewer fits, and every shared fit made on rows of the split's training part only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assay.classify import calibration
from assay.classify.folds import outer_folds
from assay.classify.models import MODELS
from assay.classify.preprocess import prepare_split
from assay.classify.shared_fits import FitMemo, fit_candidate, share_sub_fits
from assay.classify.units import tune
from assay.data.wdbc import load_dataset

STACKING = [
    {"final_estimator__C": 1.0, "knn__n_neighbors": 15},
    {"final_estimator__C": 0.1, "knn__n_neighbors": 5},
    {"final_estimator__C": 0.1, "knn__n_neighbors": 15},
]
ADABOOST = [
    {"learning_rate": 0.3, "n_estimators": 50},
    {"learning_rate": 1.0, "n_estimators": 50},
    {"learning_rate": 0.3, "n_estimators": 100},
]
VOTING = [
    {"et__min_samples_leaf": 1, "gb__max_depth": 2, "lr__C": 0.1},
    {"et__min_samples_leaf": 1, "gb__max_depth": 3, "lr__C": 0.1},
    {"et__min_samples_leaf": 3, "gb__max_depth": 2, "lr__C": 0.1},
]


@pytest.fixture(scope="module")
def split() -> Any:
    ds = load_dataset()
    X, y = ds.X.to_numpy(), ds.y.to_numpy()
    return prepare_split(X, y, outer_folds(y, 3, 1, seed=3)[0], 8, seed=3)


def _plain(key: str, params: dict[str, Any], split: Any) -> tuple[np.ndarray, np.ndarray]:
    model = MODELS[key].build(dict(params), 11).fit(split.X_fit, split.y_fit)
    proba = model.predict_proba(split.X_test)[:, 1]
    return proba, calibration.score(model, split.X_test, proba)


def _shared(key: str, params: dict[str, Any], split: Any, memo: FitMemo) -> Any:
    model = share_sub_fits(MODELS[key].build(dict(params), 11), memo).fit(split.X_fit, split.y_fit)
    proba = model.predict_proba(split.X_test)[:, 1]
    return proba, calibration.score(model, split.X_test, proba)


@pytest.mark.parametrize(("key", "candidates"), [("stacking", STACKING), ("soft_voting", VOTING)])
def test_shared_fits_predict_exactly_like_fresh_fits(key: str, candidates: list, split: Any):
    memo = FitMemo()
    for params in candidates:
        proba, score = _shared(key, params, split, memo)
        fresh_proba, fresh_score = _plain(key, params, split)
        np.testing.assert_array_equal(proba, fresh_proba)
        np.testing.assert_array_equal(score, fresh_score)
    assert memo.reused > 0


def test_stacking_fits_its_fixed_sub_estimators_once_per_row_set(split: Any):
    memo = FitMemo()
    for params in STACKING:
        _shared("stacking", params, split, memo)
    # per candidate: 3 sub-estimators on the split + on each of 3 stacking folds = 12 fits;
    # LR and ET are the same for all 3 candidates, kNN takes 2 values: (2 + 2) * 4 = 16, not 36.
    assert memo.fits == 16
    assert memo.fits + memo.reused == 36


def test_voting_fits_each_distinct_sub_estimator_once(split: Any):
    memo = FitMemo()
    for params in VOTING:
        _shared("soft_voting", params, split, memo)
    assert memo.fits == 1 + 2 + 2  # one LR (C is 0.1 thrice), two ET, two GB
    assert memo.reused == 9 - memo.fits


def test_shared_fits_see_training_rows_only(split: Any, monkeypatch: pytest.MonkeyPatch):
    """Every sub-estimator fit gets rows of the split's (resampled) training part, never a
    validation row."""
    seen: list[np.ndarray] = []
    memo = FitMemo()
    original = memo.fitted

    def spy(estimator: Any, X: Any, y: Any) -> Any:
        seen.append(np.asarray(X))
        return original(estimator, X, y)

    monkeypatch.setattr(memo, "fitted", spy)
    for params in STACKING:
        _shared("stacking", params, split, memo)
    training = {row.tobytes() for row in split.X_fit}
    validation = {row.tobytes() for row in split.X_test}
    assert seen and not training & validation
    for X in seen:
        assert {row.tobytes() for row in X} <= training


def test_tune_with_shared_fits_matches_tuning_each_candidate_alone(split: Any):
    """The unit's search (one memo over all candidates) scores each candidate as a search over
    that candidate alone (a memo with nothing to share) does."""
    together = tune("stacking", STACKING, [split], 11, "roc_auc")
    alone = [tune("stacking", [p], [split], 11, "roc_auc").scores[0] for p in STACKING]
    assert together.scores == alone


def test_adaboost_candidates_share_the_longest_fit_and_predict_exactly_like_fresh_fits(
    split: Any,
):
    memo = FitMemo()

    def build(params: Any) -> Any:
        return MODELS["adaboost"].build(dict(params), 11)

    for params in ADABOOST:
        model = fit_candidate(build, params, ADABOOST, split.X_fit, split.y_fit, memo)
        proba = model.predict_proba(split.X_test)[:, 1]
        fresh_proba, fresh_score = _plain("adaboost", params, split)
        assert len(model.estimators_) == params["n_estimators"]
        np.testing.assert_array_equal(proba, fresh_proba)
        np.testing.assert_array_equal(calibration.score(model, split.X_test, proba), fresh_score)
    assert (memo.fits, memo.reused) == (2, 1)  # 0.3 x 100 serves 0.3 x 50; 1.0 x 50 alone


def test_models_without_sub_estimators_are_left_alone():
    model = MODELS["random_forest"].build({}, 0)
    assert share_sub_fits(model, FitMemo()) is model
