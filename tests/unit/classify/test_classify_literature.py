"""The literature split is the quoted notebook's partition, and what one split's accuracy means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from assay.classify.folds import single_split
from assay.classify.literature import clopper_pearson, literature_comparison, share_at_or_above
from assay.data.wdbc import load_dataset


def test_single_split_is_the_notebooks_train_test_split_on_sklearns_encoding() -> None:
    """The notebook: train_test_split(X, y, test_size=0.2, random_state=42, stratify=y) on
    load_breast_cancer's DataFrame and target (malignant = 0)."""
    bunch = load_breast_cancer(as_frame=True)
    _, X_test, _, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.2, random_state=42, stratify=bunch.target
    )
    ours = single_split(load_dataset().y.to_numpy())
    assert len(ours.test) == 114 and len(ours.train) == 455
    assert list(ours.test) == sorted(X_test.index)
    assert int((y_test == 0).sum()) == 42  # malignant rows in the test set
    assert not set(ours.train) & set(ours.test)


def test_stratifying_on_assays_encoding_would_draw_another_split() -> None:
    """Why the split is drawn on 1 - y: the class order changes the permutation."""
    y = load_dataset().y.to_numpy()
    _, other = train_test_split(np.arange(len(y)), test_size=0.2, random_state=42, stratify=y)
    assert set(other) != set(single_split(y).test)


def test_clopper_pearson_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    low, high = clopper_pearson(113, 114)
    ref = proportion_confint(113, 114, alpha=0.05, method="beta")
    assert (low, high) == pytest.approx(ref)
    assert low < 0.96 < 113 / 114 < high < 1.0
    assert clopper_pearson(114, 114)[1] == 1.0
    with pytest.raises(ValueError, match="correct"):
        clopper_pearson(5, 4)


def test_clopper_pearson_against_published_values() -> None:
    """R's documented ``binom.test(c(682, 243), p = 3/4)`` (Mendel's peas) prints the 95% interval
    0.7076683 0.7654066; with no (all) successes the exact bound has the closed form
    1 - (alpha/2)^(1/n) (its mirror (alpha/2)^(1/n))."""
    assert clopper_pearson(682, 925) == pytest.approx((0.7076683, 0.7654066), abs=5e-8)
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)), rel=1e-12)
    assert clopper_pearson(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0), rel=1e-12)


def test_share_at_or_above() -> None:
    assert share_at_or_above([0.95, 0.99, 1.0, 0.97], 0.99) == 0.5
    assert share_at_or_above([0.9912280701754386], 113 / 114) == 1.0


def test_literature_comparison_rows() -> None:
    single = pd.DataFrame(
        [{"model": "adaboost", "accuracy": 112 / 114, "n_test": 114, "n_train": 455}]
    )
    folds = pd.DataFrame({"model": ["adaboost"] * 4, "accuracy": [0.95, 0.96, 0.99, 113 / 114]})
    summaries = {"adaboost": {"cv": {"accuracy": {"mean": 0.97, "ci_low": 0.94, "ci_high": 0.98}}}}
    block = literature_comparison(single, folds, summaries)
    row = block["models"]["adaboost"]
    assert row["correct"] == 112 and row["share_of_outer_folds_at_or_above"] == 0.5
    assert row["cv_accuracy"]["ci_high"] == 0.98
    assert (
        block["quoted"]["correct"] == 113
        and block["quoted"]["share_of_outer_folds_at_or_above"] == 0.25
    )
    assert "stratify=y" in block["split"]
