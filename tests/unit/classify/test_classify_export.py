"""The exported model: plain scikit-learn, loadable without imbalanced-learn or assay, and it
calls known malignant rows malignant (1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from _signing import UNSIGNED_OK

from assay.data.wdbc import FEATURE_NAMES, load_dataset

LOADER = """
import json, sys
import joblib, numpy as np
model = joblib.load(sys.argv[1])
X = np.load(sys.argv[2])
banned = sorted(m for m in sys.modules if m.split(".")[0] in ("imblearn", "assay"))
print(json.dumps({"banned": banned, "predict": model.predict(X).tolist(),
                  "proba": model.predict_proba(X)[:, 1].tolist(),
                  "steps": [name for name, _ in model.steps]}))
"""


def _walk_classes(obj: Any, seen: set[int] | None = None) -> set[str]:
    """Module paths of every object reachable through estimator params and fitted attributes."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | np.ndarray | type(None)):
        return set()
    seen.add(id(obj))
    found = {type(obj).__module__}
    children: list[Any] = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    for child in children:
        found |= _walk_classes(child, seen)
    return found


def test_model_loads_with_sklearn_alone_and_predicts_malignant(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    model_path = Path(trained["summary"]["model_dir"]) / "model.joblib"
    ds = load_dataset()
    malignant = ds.X[ds.y == 1].to_numpy()[:40]
    benign = ds.X[ds.y == 0].to_numpy()[:40]
    np.save(tmp_path / "x.npy", np.vstack([malignant, benign]))
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    # -I: isolated mode, so neither the repo nor the cwd is on sys.path
    out = subprocess.run(
        [sys.executable, "-I", str(script), str(model_path), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result["banned"] == []
    assert result["steps"] == ["scaler", "select", "classifier"]
    threshold = json.loads((model_path.parent / "model-card.json").read_text())["threshold"]
    # predict() itself applies the card's clinical threshold (FixedThresholdClassifier), so a
    # stock scikit-learn runtime that calls predict() labels rows as the assay server does
    at_threshold = (np.asarray(result["proba"]) >= threshold).astype(int).tolist()
    assert result["predict"] == at_threshold
    predicted = np.asarray(result["predict"])
    assert predicted[:40].mean() >= 0.9  # known malignant rows -> 1
    assert predicted[40:].mean() <= 0.1  # known benign rows -> 0
    assert np.mean(result["proba"][:40]) > np.mean(result["proba"][40:])


def test_exported_pipeline_has_no_imblearn_class(trained: dict[str, Any]) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = joblib.load(Path(trained["summary"]["model_dir"]) / "model.joblib")
    assert type(model) is Pipeline
    assert isinstance(model.named_steps["scaler"], StandardScaler)
    select = model.named_steps["select"]
    assert isinstance(select, ColumnTransformer)
    assert select.transformers[0][1] == "passthrough"
    modules = _walk_classes(model)
    assert not {m for m in modules if m.startswith(("imblearn", "assay"))}
    assert model.predict_proba(np.zeros((1, 30))).shape == (1, 2)


def test_model_card(trained: dict[str, Any]) -> None:
    model_dir = Path(trained["summary"]["model_dir"])
    card = json.loads((model_dir / "model-card.json").read_text())
    summary = trained["summary"]
    assert card["model_name"] == "wdbc-classifier"
    assert card["estimator"] == summary["selected_model"]
    assert card["feature_names"] == list(FEATURE_NAMES)
    assert len(card["selected_features"]) == trained["config"].k_features
    assert set(card["selected_features"]) <= set(FEATURE_NAMES)
    assert card["threshold"] == summary["threshold"]
    assert card["positive_class"] == "malignant" and card["positive_label"] == 1
    assert card["data_hash"] == load_dataset().data_hash
    assert card["seed"] == trained["config"].seed
    assert {"scikit-learn", "numpy", "python"} <= set(card["library_versions"])
    assert card["metrics"]["roc_auc"] > 0.95
    assert card["created_at"].endswith("+00:00") and card["protocol"]


def test_served_probability_is_the_calibrated_one(trained: dict[str, Any]) -> None:
    """predict_proba = the card's sigmoid of the classifier's score, and that sigmoid is the one
    fitted on the final model's inner out-of-fold scores (not on its in-sample output)."""
    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import StackingClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    from assay.classify import calibration

    model_dir = Path(trained["summary"]["model_dir"])
    model = joblib.load(model_dir / "model.joblib")
    card = json.loads((model_dir / "model-card.json").read_text())
    step = model.named_steps["classifier"]
    assert isinstance(step, FixedThresholdClassifier) and step.threshold == card["threshold"]
    assert isinstance(step.estimator, FrozenEstimator)  # nothing refitted by the wrapper
    stack = step.estimator.estimator
    assert isinstance(stack, StackingClassifier) and stack.cv == "prefit"
    assert isinstance(stack.final_estimator_, FrozenEstimator)
    assert isinstance(stack.final_estimator_.estimator, CalibratedClassifierCV)
    X = load_dataset().X.to_numpy()
    features = model[:-1].transform(X)
    (bare,) = stack.estimators_
    raw = bare.predict_proba(features)[:, 1]
    sigmoid = card["calibration"]["sigmoid"]
    expected = expit(-(sigmoid["a"] * calibration.score(bare, features, raw) + sigmoid["b"]))
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], expected, rtol=1e-9)
    assert not np.allclose(model.predict_proba(X)[:, 1], raw)
    inner = pd.read_csv(Path(trained["root"]) / "train" / "cv" / "final_inner_oof.csv")
    refit = calibration.sigmoid_params(calibration.fit_calibrator(inner["score"], inner["y_true"]))
    assert (refit["a"], refit["b"]) == pytest.approx((sigmoid["a"], sigmoid["b"]), rel=1e-6)
    assert card["operating_point"]["threshold"] == card["threshold"]
    assert card["operating_point"]["apparent"]["note"].startswith("APPARENT")
    assert "held_out_cv_estimate" in card["operating_point"]


def test_classifier_server_loads_the_calibrated_export(trained: dict[str, Any]) -> None:
    """The server's loader accepts the exported folder and serves its calibrated probability,
    compiled to ONNX (the calibrated step converts) and equal to predict_proba."""
    from assay.serving.classifier_versions import load_folder

    model_dir = Path(trained["summary"]["model_dir"])
    loaded = load_folder(model_dir, UNSIGNED_OK)  # a build folder, never registered
    X = load_dataset().X.to_numpy()
    model = joblib.load(model_dir / "model.joblib")
    expected = model.predict_proba(X)[:, 1]
    assert loaded.proba.backend == "onnxruntime"
    served = loaded.proba(X)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    # every WDBC row: the ONNX-served label equals the joblib model's own predict()
    np.testing.assert_array_equal((served >= loaded.threshold).astype(int), model.predict(X))
    assert loaded.threshold == json.loads((model_dir / "model-card.json").read_text())["threshold"]


def test_classifier_server_refuses_a_card_threshold_the_model_does_not_apply(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """A card whose threshold differs from the one the model's predict() applies is refused, so
    the assay server and a stock runtime never label the same row differently."""
    import shutil

    from assay.serving.classifier_versions import InvalidModelError, load_folder

    folder = tmp_path / "v1"
    shutil.copytree(Path(trained["summary"]["model_dir"]), folder)
    card = json.loads((folder / "model-card.json").read_text())
    card["threshold"] = round(1 - card["threshold"], 3)
    (folder / "model-card.json").write_text(json.dumps(card))
    with pytest.raises(InvalidModelError, match="not the card's"):
        load_folder(folder, UNSIGNED_OK, compile=False)
