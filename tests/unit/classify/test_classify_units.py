"""The nested search inside one unit, and seed derivation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.classify.folds import outer_folds
from assay.classify.preprocess import prepare_split
from assay.classify.seeds import derive_seed
from assay.classify.units import tune
from assay.data.wdbc import load_dataset


@pytest.fixture(scope="module")
def inner_splits() -> list:
    ds = load_dataset()
    X, y = ds.X.to_numpy(), ds.y.to_numpy()
    return [prepare_split(X, y, f, 5, seed=1) for f in outer_folds(y, 2, 1, seed=1)]


def test_unfittable_candidate_is_skipped(inner_splits: list) -> None:
    tuned = tune("logistic_regression", [{"C": -1.0}, {"C": 1.0}], inner_splits, 0, "roc_auc")
    assert math.isnan(tuned.scores[0]) and tuned.scores[1] > 0.9
    assert tuned.params == {"C": 1.0}


def test_no_fittable_candidate_raises(inner_splits: list) -> None:
    with pytest.raises(ValueError):
        tune("logistic_regression", [{"C": -1.0}], inner_splits, 0, "roc_auc")


def test_best_candidate_by_oriented_metric(inner_splits: list) -> None:
    tuned = tune("logistic_regression", [{"C": 0.001}, {"C": 1.0}], inner_splits, 0, "brier")
    assert all(v < 0 for v in tuned.scores)  # Brier is negated: higher is better everywhere
    assert tuned.params == [{"C": 0.001}, {"C": 1.0}][int(np.argmax(tuned.scores))]


def test_derived_seeds_depend_on_identity_only() -> None:
    assert derive_seed(42, "model", "rf", "r0f1") == derive_seed(42, "model", "rf", "r0f1")
    assert derive_seed(42, "model", "rf", "r0f1") != derive_seed(42, "model", "rf", "r0f2")
    assert derive_seed(42, "x") != derive_seed(43, "x")
    assert 0 <= derive_seed(7, "anything") < 2**31
