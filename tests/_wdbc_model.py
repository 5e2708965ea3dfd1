"""The contract-shaped WDBC model the serving tests and the container tests serve.

StandardScaler -> ColumnTransformer passthrough of 15 columns -> AdaBoost, trained on
scikit-learn's WDBC copy with malignant re-encoded to 1, beside a model card.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np

MODEL_NAME = "wdbc-classifier"
SELECTED = list(range(0, 30, 2))


def wdbc() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, 1 - data.target, [str(name) for name in data.feature_names]


def write_model_folder(
    folder: Path,
    *,
    n_estimators: int = 50,
    threshold: float = 0.3,
    ranges: bool = False,
    signed: bool = True,
) -> Path:
    """model.joblib + model-card.json shaped like the contract's exported model, and (``signed``)
    a signature.json by the tests' key (tests/_signing.py), which the test servers trust.

    ``ranges``: the card records each feature's training range (cards before issue 14 do not).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, names = wdbc()
    pipeline = Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "select",
                ColumnTransformer([("selected", "passthrough", SELECTED)], remainder="drop"),
            ),
            ("classifier", AdaBoostClassifier(n_estimators=n_estimators, random_state=0)),
        ]
    ).fit(X, y)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    card = {
        "model_name": MODEL_NAME,
        "estimator": "adaboost",
        "feature_names": names,
        "selected_features": [names[i] for i in SELECTED],
        "threshold": threshold,
        "positive_class": "malignant",
        "positive_label": 1,
        "metrics": {"roc_auc": 0.99},
        "data_hash": "sha256:test",
        "seed": 0,
        "library_versions": {},
        "created_at": "2026-01-01T00:00:00Z",
        "protocol": "test fixture",
    }
    if ranges:
        card["feature_ranges"] = {
            name: [float(low), float(high)]
            for name, low, high in zip(names, X.min(axis=0), X.max(axis=0), strict=True)
        }
    (folder / "model-card.json").write_text(json.dumps(card))
    if signed:
        sign_folder(folder)
    return folder


def sign_folder(folder: Path, version: str = "build") -> None:
    """(Re)write ``folder``'s signature.json with the tests' key, as a register step would."""
    from _signing import SIGNER

    files = {name: (folder / name).read_bytes() for name in ("model.joblib", "model-card.json")}
    (folder / "signature.json").write_bytes(SIGNER.sign(MODEL_NAME, version, files))
