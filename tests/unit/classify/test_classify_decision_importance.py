"""Net benefit by hand, RFE selection frequency and permutation importance on small cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from assay.classify.decision_curve import decision_curves, net_benefit, treat_all
from assay.classify.importance import permutation_importance, rfe_frequency

Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.0])


def test_net_benefit_by_hand() -> None:
    # pt = 0.25: called = p >= .25 -> tp 4, fp 2 (0.7, 0.4); NB = 4/10 - 2/10 * (1/3)
    # pt = 0.5: tp 3, fp 1; NB = 3/10 - 1/10 * 1
    assert net_benefit(Y, P, [0.25, 0.5]) == pytest.approx([0.4 - 0.2 / 3, 0.2])
    # treat all: prevalence 0.4 - 0.6 * odds(pt)
    assert treat_all(Y, [0.25, 0.5]) == pytest.approx([0.4 - 0.6 / 3, -0.2])


def test_a_perfect_model_gains_the_prevalence_everywhere() -> None:
    perfect = Y.astype(float)
    assert net_benefit(Y, perfect, [0.01, 0.3, 0.5]) == pytest.approx([0.4, 0.4, 0.4])


def test_decision_curves_average_over_repeats() -> None:
    oof = pd.DataFrame(
        {
            "model": ["m"] * 20,
            "repeat": [0] * 10 + [1] * 10,
            "y_true": list(Y) * 2,
            "p_malignant": list(P) + list(Y.astype(float)),  # repeat 1: perfect
        }
    )
    curves = decision_curves(oof, ["m"], thresholds=[0.25, 0.5])
    first = net_benefit(Y, P, [0.25, 0.5])
    expected = [(a + 0.4) / 2 for a in first]
    assert curves["models"]["m"]["net_benefit"] == pytest.approx(expected)
    assert curves["models"]["m"]["min_over_repeats"] == pytest.approx(first)
    assert curves["treat_all"] == pytest.approx(treat_all(Y, [0.25, 0.5]))


def test_rfe_frequency_counts_each_outer_fold_once() -> None:
    folds = pd.DataFrame(
        {
            "model": ["a", "b", "a", "b", "a", "b"],
            "fold_id": ["f0", "f0", "f1", "f1", "f2", "f2"],
            "selected": [json.dumps(s) for s in ([0, 1], [0, 1], [1, 0], [1, 0], [0, 2], [0, 2])],
        }
    )
    out = rfe_frequency(folds, ["x0", "x1", "x2", "x3"])
    assert out["folds"] == 3 and out["distinct_subsets"] == 2
    assert out["most_common_subset_folds"] == 2
    assert out["frequency"] == pytest.approx({"x0": 1.0, "x1": 2 / 3, "x2": 1 / 3, "x3": 0.0})
    assert list(out["frequency"]) == ["x0", "x1", "x2", "x3"]


def test_permutation_importance_sees_only_what_the_model_uses() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(np.int64)
    model = LogisticRegression().fit(X[:, [0, 1]] * [1, 0], y)  # column 1 weighted out

    class OnlyTwo:
        def predict_proba(self, rows: np.ndarray) -> np.ndarray:
            return model.predict_proba(rows[:, [0, 1]] * [1, 0])

    out = permutation_importance(OnlyTwo(), X, y, [0, 1], ["a", "b", "c"], random_state=1)
    by_name = {f["feature"]: f for f in out["features"]}
    assert by_name["a"]["mean"] > 0.2
    assert by_name["b"]["mean"] == 0.0
    assert "c" not in by_name  # not a selected column
    assert out["label"].startswith("apparent")
