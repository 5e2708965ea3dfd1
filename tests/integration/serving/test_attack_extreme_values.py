"""Attack: rows of huge finite values (``1e308``) that overflow the scaler into a NaN probability,
which ``NaN >= threshold`` would call benign.

Real classifier servers on 127.0.0.1: "hardened" serves a card with the features' training
ranges (rows far outside them get a 400 naming the feature); "module" serves a card from before
the ranges were recorded (it still loads; only the non-finite check applies there).
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from _serving_support import MODEL_NAME, wdbc

from assay.classify.export import feature_ranges, model_card

pytestmark = pytest.mark.integration


def body(rows: np.ndarray) -> dict:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }


def infer(url: str, rows: np.ndarray) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=body(rows), timeout=30)


def test_row_of_1e308_is_refused_naming_the_feature(hardened) -> None:
    response = infer(hardened.url, np.full((1, 30), 1e308))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "'mean radius'" in error and "training range" in error


def test_row_of_1e308_over_v1_predict_is_refused(hardened, server) -> None:
    for target in (hardened, server):
        response = httpx.post(
            f"{target.url}/v1/models/{MODEL_NAME}:predict",
            json={"instances": [[1e308] * 30]},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert (
            "'mean radius'" in response.json()["error"] or "not finite" in response.json()["error"]
        )


def test_one_far_out_value_is_refused_naming_its_feature(hardened) -> None:
    X, _, names = wdbc()
    rows = X[:3].copy()
    low, high = X[:, 7].min(), X[:, 7].max()
    rows[2, 7] = high + 1.5 * (high - low)  # past the documented margin of one span
    response = infer(hardened.url, rows)
    assert response.status_code == 400, response.text
    assert f"row 2, column 7 ({names[7]!r})" in response.json()["error"]
    rows[2, 7] = high + 0.5 * (high - low)  # inside the margin: served
    assert infer(hardened.url, rows).status_code == 200


def test_row_of_1e308_gets_no_label_from_a_card_without_ranges(server) -> None:
    response = infer(server.url, np.full((1, 30), 1e308))
    assert response.status_code == 400, response.text
    assert "not finite" in response.json()["error"]
    assert infer(server.url, wdbc()[0][:2]).status_code == 200


def test_the_model_card_records_each_feature_training_range() -> None:
    X, _, names = wdbc()
    ranges = feature_ranges(X, names)
    card = model_card(
        model_name="m",
        estimator="e",
        feature_names=names,
        selected_features=names[:2],
        threshold=0.5,
        metrics={},
        data_hash="h",
        seed=0,
        protocol="p",
        best_params={},
        feature_ranges=ranges,
    )
    assert card["feature_ranges"]["mean radius"] == [X[:, 0].min(), X[:, 0].max()]
    assert list(card["feature_ranges"]) == names
