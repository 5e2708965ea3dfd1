"""The model every benchmarked server loads: the contract's exported pipeline and card, and the
v2 JSON request bodies sent to it."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import AdaBoostClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MODEL_NAME = "wdbc-classifier"


def build_model(folder: Path) -> Path:
    """The contract's exported pipeline + card, trained on WDBC (malignant = 1)."""
    data = load_breast_cancer()
    X, y = data.data, 1 - data.target
    selected = list(range(0, 30, 2))
    pipeline = Pipeline(
        [
            ("scaler", StandardScaler()),
            ("select", ColumnTransformer([("selected", "passthrough", selected)])),
            ("classifier", AdaBoostClassifier(n_estimators=50, random_state=0)),
        ]
    ).fit(X, y)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    names = [str(n) for n in data.feature_names]
    card = {
        "model_name": MODEL_NAME,
        "estimator": "adaboost",
        "feature_names": names,
        "selected_features": [names[i] for i in selected],
        "threshold": 0.3,
        "positive_class": "malignant",
        "positive_label": 1,
        "version": "v1",
    }
    (folder / "model-card.json").write_text(json.dumps(card))
    return folder


def request_body(rows: np.ndarray, outputs: list[str] | None) -> bytes:
    body: dict = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return json.dumps(body).encode()
