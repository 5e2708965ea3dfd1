"""The exported model: a plain scikit-learn Pipeline (scaler -> column selection -> classifier).

The classifier step is scikit-learn's ``FixedThresholdClassifier`` (``response_method=
"predict_proba"``, the card's clinical threshold) around the calibrated classifier
(``assay.classify.calibration``), so ``predict_proba`` is calibrated and ``predict`` says malignant
exactly where P(malignant) >= threshold, in any scikit-learn runtime.

SMOTE is a training-time step only, so the served pipeline holds no imbalanced-learn object and
loads with scikit-learn + joblib alone. It accepts an [n, 30] float array in FEATURE_NAMES order.
"""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from assay.classify.names import AT_CUTOFF_NOTE

if TYPE_CHECKING:
    from numpy.typing import NDArray

MODEL_FILE = "model.joblib"
CARD_FILE = "model-card.json"


def serving_pipeline(
    fitted_preprocessor: Any,
    classifier: Any,
    X_train: NDArray[np.float64],
    with_imputer: bool = False,
) -> Any:
    """Assemble the served Pipeline from a fitted preprocessor (its scaler and RFE mask).

    ``X_train`` (raw, [n, 30]) only fixes the ColumnTransformer's input width; nothing is learned
    from it beyond what the preprocessor already learned. ``with_imputer`` (for data loaded with
    ``--impute median``) keeps the preprocessor's training-fitted median imputer in front.
    """
    imputer = fitted_preprocessor.named_steps["imputer"]
    scaler = fitted_preprocessor.named_steps["scaler"]
    selected = [int(i) for i in np.flatnonzero(fitted_preprocessor.named_steps["rfe"].support_)]
    select = ColumnTransformer([("selected", "passthrough", selected)], remainder="drop")
    X_train = np.asarray(X_train, dtype=np.float64)
    select.fit(scaler.transform(imputer.transform(X_train[:2])))
    steps = [("scaler", scaler), ("select", select), ("classifier", classifier)]
    if with_imputer:
        steps.insert(0, ("imputer", imputer))
    return Pipeline(steps)


def with_threshold(pipeline: Pipeline, threshold: float, X_train: Any, y_train: Any) -> Pipeline:
    """The same fitted steps, with the last one deciding malignant (1) where P(malignant) >=
    ``threshold``; ``predict_proba`` is unchanged.

    Nothing is refitted: the classifier goes in frozen, and ``fit`` on the pipeline's training
    rows (``X_train`` raw, ``y_train``) only marks the wrapper fitted.
    """
    *head, (name, classifier) = pipeline.steps
    decide = FixedThresholdClassifier(
        FrozenEstimator(classifier),
        threshold=threshold,
        response_method="predict_proba",
        pos_label=1,
    )
    decide.fit(pipeline[:-1].transform(np.asarray(X_train, dtype=np.float64)), y_train)
    return Pipeline([*head, (name, decide)])


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("scikit-learn", "numpy", "scipy", "joblib", "imbalanced-learn", "assay"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover
            continue
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, payload: Any) -> None:
    """JSON (sorted keys, NaN written as null) via temp file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(payload), indent=2, sort_keys=True, allow_nan=False)
    _atomic_write_bytes(path, (text + "\n").encode())


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return _finite(value.item())
    return value


def save_model(model_dir: Path, pipeline: Any, card: dict[str, Any]) -> Path:
    """Write model.joblib, then model-card.json last (a folder is complete once the card exists)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (MODEL_FILE + ".tmp")
    joblib.dump(pipeline, tmp)
    os.replace(tmp, model_dir / MODEL_FILE)
    write_json(model_dir / CARD_FILE, card)
    return model_dir


def feature_ranges(X_train: Any, feature_names: list[str]) -> dict[str, list[float]]:
    """Each feature's [min, max] over the rows the final model was fitted on (NaN ignored).

    The server refuses rows far outside these ranges (docs/design.md, the v2 tensor contract).
    """
    matrix = np.asarray(X_train, dtype=np.float64)
    lows, highs = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
    return {
        name: [float(low), float(high)]
        for name, low, high in zip(feature_names, lows, highs, strict=True)
    }


def model_card(
    *,
    model_name: str,
    estimator: str,
    feature_names: list[str],
    selected_features: list[str],
    threshold: float,
    metrics: dict[str, float],
    data_hash: str,
    seed: int,
    protocol: str,
    best_params: dict[str, Any],
    feature_ranges: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    card = {
        "model_name": model_name,
        "estimator": estimator,
        "feature_names": feature_names,
        "selected_features": selected_features,
        "threshold": threshold,
        "positive_class": "malignant",
        "positive_label": 1,
        "metrics": metrics,
        "metrics_note": AT_CUTOFF_NOTE,
        "data_hash": data_hash,
        "seed": seed,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": protocol,
        "best_params": best_params,
    }
    if feature_ranges is not None:
        card["feature_ranges"] = feature_ranges
    return card
