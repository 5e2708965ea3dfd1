"""Fold definitions: repeated stratified outer folds, nested inner folds, the single 80/20 split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from assay.classify.seeds import derive_seed

if TYPE_CHECKING:
    from numpy.typing import NDArray

SINGLE_SPLIT_ID = "single-80-20"
SINGLE_SPLIT_TEST_SIZE = 0.2
SINGLE_SPLIT_RANDOM_STATE = 42  # the split behind the widely quoted "AdaBoost 99.12%"
SINGLE_SPLIT_CALL = (
    "train_test_split(X, y, test_size=0.2, random_state=42, stratify=y) with y = scikit-learn's "
    "load_breast_cancer().target (malignant = 0, benign = 1)"
)
FULL_DATA_ID = "full"


@dataclass(frozen=True)
class Fold:
    """Row positions (into the full data set) of one training/validation split."""

    fold_id: str
    repeat: int
    train: NDArray[np.intp]
    test: NDArray[np.intp]


def outer_folds(y: NDArray[np.int64], folds: int, repeats: int, seed: int) -> list[Fold]:
    """Repeated stratified k-fold; repeat r is shuffled with a state derived from (seed, r)."""
    out: list[Fold] = []
    for repeat in range(repeats):
        splitter = StratifiedKFold(
            n_splits=folds, shuffle=True, random_state=derive_seed(seed, "outer", repeat)
        )
        for index, (train, test) in enumerate(splitter.split(y, y)):
            out.append(Fold(f"r{repeat}f{index}", repeat, train, test))
    return out


def inner_folds(outer: Fold, y: NDArray[np.int64], n_splits: int, seed: int) -> list[Fold]:
    """Stratified folds of the outer training rows only (positions still index the full data)."""
    y_train = y[outer.train]
    splitter = StratifiedKFold(
        n_splits=n_splits, shuffle=True, random_state=derive_seed(seed, "inner", outer.fold_id)
    )
    return [
        Fold(f"{outer.fold_id}/i{index}", outer.repeat, outer.train[tr], outer.train[te])
        for index, (tr, te) in enumerate(splitter.split(y_train, y_train))
    ]


def single_split(y: NDArray[np.int64]) -> Fold:
    """The literature's 80/20 split, reproduced exactly (see SINGLE_SPLIT_CALL).

    The quoted notebook stratifies on scikit-learn's encoding (malignant = 0). Stratifying on
    assay's re-encoded label (malignant = 1) orders the classes the other way round and draws a
    different partition, so the split is drawn on ``1 - y``.
    """
    positions = np.arange(len(y))
    train, test = train_test_split(
        positions,
        test_size=SINGLE_SPLIT_TEST_SIZE,
        stratify=1 - np.asarray(y),
        random_state=SINGLE_SPLIT_RANDOM_STATE,
    )
    return Fold(SINGLE_SPLIT_ID, -1, np.sort(train), np.sort(test))


def full_data(y: NDArray[np.int64]) -> Fold:
    """All rows as training rows: the final refit (no validation rows)."""
    positions = np.arange(len(y))
    return Fold(FULL_DATA_ID, -1, positions, positions[:0])
