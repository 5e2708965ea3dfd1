"""`assay serve classifier` (a real process) and `assay predict` (in-process, typer's runner)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _serving_support import MODEL_NAME, sign_folder, wdbc
from typer.testing import CliRunner

from assay.cli import app

pytestmark = pytest.mark.integration


def test_assay_serve_classifier_serves_a_version_folder(servers, registered_models) -> None:
    cli = servers["cli"]
    X = wdbc()[0][:20]
    body = {
        "inputs": [
            {"name": "input-0", "shape": [20, 30], "datatype": "FP64", "data": X.ravel().tolist()}
        ]
    }
    response = httpx.post(f"{cli.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    # the folder is the build folder: no "version" in its card, so the server says so
    assert response.json()["model_version"] == "unversioned"
    labels = (registered_models.pipeline().predict_proba(X)[:, 1] >= 0.3).astype(int)
    assert response.json()["outputs"][0]["data"] == labels.tolist()
    assert httpx.get(f"{cli.url}/health").status_code == 200
    logged = [json.loads(line) for line in cli.logs().splitlines() if '"inference_request"' in line]
    assert any(line["level"] == "debug" and line["batch_size"] == 20 for line in logged)


def test_polling_picks_up_a_changed_version_folder(servers, registered_models) -> None:
    """The CLI server polls its folder (--reload-interval 0.3): a new card threshold is served."""
    cli = servers["cli"]
    card_path = Path(cli.model_uri) / "model-card.json"
    X = wdbc()[0][:40]
    body = {
        "inputs": [
            {"name": "input-0", "shape": [40, 30], "datatype": "FP64", "data": X.ravel().tolist()}
        ]
    }
    proba = registered_models.pipeline().predict_proba(X)[:, 1]
    card = json.loads(card_path.read_text())
    card["threshold"] = 0.7
    card_path.write_text(json.dumps(card))
    sign_folder(card_path.parent)  # a new build, signed as the register step would
    deadline = time.monotonic() + 30
    expected = (proba >= 0.7).astype(int).tolist()
    while time.monotonic() < deadline:
        response = httpx.post(f"{cli.url}/v2/models/{MODEL_NAME}/infer", json=body)
        assert response.status_code == 200, response.text
        if response.json()["outputs"][0]["data"] == expected:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the new threshold was never served")
    assert expected != (proba >= 0.3).astype(int).tolist()
    card["threshold"] = 0.3
    card_path.write_text(json.dumps(card))
    sign_folder(card_path.parent)


def test_assay_predict_prints_csv_equal_to_the_joblib_model(
    server, registered_models, tmp_path
) -> None:
    X, _, names = wdbc()
    frame = pd.DataFrame(X[:300], columns=names)
    frame.insert(0, "patient", range(300))  # extra columns are ignored
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["predict", "--url", server.url, "--format", "csv", "--batch-rows", "128", str(path)]
    )
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    proba = registered_models.pipeline().predict_proba(X[:300])[:, 1]
    assert list(printed.columns) == ["row", "prediction", "predict", "probability", "confidence"]
    np.testing.assert_array_equal(printed["predict"], (proba >= 0.3).astype(int))
    np.testing.assert_allclose(printed["probability"], proba, atol=1e-5)
    assert set(printed["prediction"]) == {"benign", "malignant"}


def test_assay_predict_reports_bad_input_and_unreachable_servers(server, tmp_path) -> None:
    path = tmp_path / "narrow.csv"
    pd.DataFrame({"mean radius": [1.0], "mean texture": [2.0]}).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["predict", "--url", server.url, str(path)])
    assert result.exit_code == 2 and "lacks 28 of the 30 WDBC feature columns" in result.output
    _, _, names = wdbc()
    full = tmp_path / "full.csv"
    pd.DataFrame(np.ones((2, 30)), columns=names).to_csv(full, index=False)
    result = CliRunner().invoke(app, ["predict", "--url", server.url, "--model", "nope", str(full)])
    assert result.exit_code == 1 and "the server refused the request" in result.output
    result = CliRunner().invoke(app, ["predict", "--url", "http://127.0.0.1:9", str(full)])
    assert result.exit_code == 1 and "cannot reach the inference server" in result.output
