"""Scaler, SMOTE and RFE must only ever see the training rows of the split they serve.

The real preprocessing factory is replaced by one whose steps are the same classes with a spy
that records every array they are fitted on. Each spied pipeline is tied back to its split by
the SMOTE random state (derived from the split's id), and the rows it saw are compared with
that split's training and validation rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from sklearn.feature_selection import RFE
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from assay.classify import preprocess
from assay.classify.folds import Fold, full_data, inner_folds, outer_folds, single_split
from assay.classify.seeds import derive_seed
from assay.data.wdbc import load_dataset

RECORDS: list[dict[str, Any]] = []


class SpyImputer(SimpleImputer):
    def fit(self, X: Any, y: Any = None) -> Any:
        self.record_["imputer"] = np.array(X, copy=True)
        return super().fit(X, y)


class SpyScaler(StandardScaler):
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        self.record_["scaler"] = np.array(X, copy=True)
        return super().fit(X, y, sample_weight)


class SpySMOTE(SMOTE):
    def fit_resample(self, X: Any, y: Any, **params: Any) -> Any:
        self.record_["smote"] = np.array(X, copy=True)
        return super().fit_resample(X, y, **params)


class SpyRFE(RFE):
    def fit(self, X: Any, y: Any, **params: Any) -> Any:
        self.record_["rfe"] = np.array(X, copy=True)
        return super().fit(X, y, **params)


def spy_preprocessor(k_features: int, random_state: int, smote_neighbours: int) -> Any:
    real = _real_factory(k_features, random_state, smote_neighbours)
    record: dict[str, Any] = {"random_state": random_state}
    RECORDS.append(record)
    spies = (("imputer", SpyImputer), ("scaler", SpyScaler), ("smote", SpySMOTE), ("rfe", SpyRFE))
    for name, cls in spies:
        step = real.named_steps[name]
        step.__class__ = cls
        step.record_ = record
    return real


_real_factory = preprocess.make_preprocessor


def _splits(y: np.ndarray, config: Any) -> dict[int, Fold]:
    outers = outer_folds(y, config.folds, config.repeats, config.seed)
    every = [*outers, single_split(y), full_data(y)]
    every += [i for f in every for i in inner_folds(f, y, config.inner_folds, config.seed)]
    return {derive_seed(config.seed, "smote", f.fold_id): f for f in every}


def test_preprocessing_never_sees_validation_rows(
    wdbc_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Any
) -> None:
    from assay.classify.stages import run_training

    RECORDS.clear()
    monkeypatch.setattr(preprocess, "make_preprocessor", spy_preprocessor)
    config = tiny_config(models=["logistic_regression"])  # preprocessing is model-independent
    run_training(wdbc_csv, config, tmp_path / "train", executor="inline", progress=False)

    ds = load_dataset()
    X, y = ds.X.to_numpy(), ds.y.to_numpy()
    row_of = {tuple(row): i for i, row in enumerate(X)}
    splits = _splits(y, config)
    # 3 outer + single + full, each with 2 inner splits
    assert len(RECORDS) == len(splits) == 15

    for record in RECORDS:
        fold = splits[record["random_state"]]
        seen = {row_of[tuple(r)] for r in record["scaler"]}
        assert seen == set(fold.train.tolist()), fold.fold_id
        imputed = {row_of[tuple(r)] for r in record["imputer"]}
        assert imputed == seen, fold.fold_id
        assert not seen & set(fold.test.tolist()), fold.fold_id

        scaler = StandardScaler().fit(X[fold.train])
        smote_rows = scaler.inverse_transform(record["smote"])
        np.testing.assert_allclose(
            np.sort(smote_rows, axis=0), np.sort(X[fold.train], axis=0), atol=1e-9
        )

        rfe_rows = scaler.inverse_transform(record["rfe"])
        np.testing.assert_allclose(rfe_rows[: len(fold.train)], smote_rows, atol=1e-9)
        outside = np.setdiff1d(np.arange(len(X)), fold.train)
        if len(outside):
            gaps = np.abs(rfe_rows[:, None, :] - X[outside][None, :, :]).max(axis=2)
            assert gaps.min() > 1e-9, f"{fold.fold_id}: RFE saw a row outside its training rows"
