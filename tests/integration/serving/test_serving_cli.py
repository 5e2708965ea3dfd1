"""`assay serve classifier` (a real process) and `assay predict` (a real process too).

`assay predict` runs in a child interpreter where tritonclient cannot be imported
(_predict_without_tritonclient.py): it must work on KServe's own v2 clients alone, over REST
(``http://``) and gRPC (``grpc://``), against the real classifier server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _serving_support import MODEL_NAME, RunningServer, free_port, sign_folder, wdbc
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


PREDICT = Path(__file__).with_name("_predict_without_tritonclient.py")
PROTOCOLS = ("rest", "grpc")


def endpoint(server: RunningServer, protocol: str) -> str:
    return server.url if protocol == "rest" else f"grpc://{server.grpc_target}"


def assay_predict(*args: str) -> subprocess.CompletedProcess[str]:
    """``assay predict ARGS`` in a child interpreter that cannot import tritonclient."""
    return subprocess.run(
        [sys.executable, str(PREDICT), "predict", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_sentence(child: subprocess.CompletedProcess[str]) -> str:
    """The CLI's error output, checked to be a sentence and not a traceback."""
    assert "Traceback" not in child.stderr, child.stderr
    return " ".join(child.stderr.split())


@pytest.fixture
def full_rows(tmp_path: Path) -> Path:
    _, _, names = wdbc()
    path = tmp_path / "full.csv"
    pd.DataFrame(np.ones((2, 30)), columns=names).to_csv(path, index=False)
    return path


@pytest.fixture
def silent_server() -> Iterator[str]:
    """127.0.0.1:<port> that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def test_the_blocker_makes_tritonclient_uninstalled() -> None:
    child = subprocess.run(
        [sys.executable, str(PREDICT), "import-tritonclient"], capture_output=True, text=True
    )
    assert child.returncode == 1
    assert "ImportError: No module named 'tritonclient' (blocked" in child.stderr


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_prints_csv_equal_to_the_joblib_model(
    server, registered_models, tmp_path, protocol
) -> None:
    X, _, names = wdbc()
    frame = pd.DataFrame(X[:300], columns=names)
    frame.insert(0, "patient", range(300))  # extra columns are ignored
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    url = endpoint(server, protocol)
    child = assay_predict("--url", url, "--format", "csv", "--batch-rows", "128", str(path))
    assert child.returncode == 0, child.stderr
    printed = pd.read_csv(io.StringIO(child.stdout))
    proba = registered_models.pipeline().predict_proba(X[:300])[:, 1]
    assert list(printed.columns) == ["row", "prediction", "predict", "probability", "confidence"]
    np.testing.assert_array_equal(printed["row"], np.arange(300))
    np.testing.assert_array_equal(printed["predict"], (proba >= 0.3).astype(int))
    np.testing.assert_allclose(printed["probability"], proba, atol=1e-5)
    np.testing.assert_allclose(printed["confidence"], np.maximum(proba, 1 - proba), atol=1e-5)
    assert set(printed["prediction"]) == {"benign", "malignant"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_table_names_the_served_version(server, full_rows, protocol) -> None:
    child = assay_predict("--url", endpoint(server, protocol), str(full_rows))
    assert child.returncode == 0, child.stderr
    assert f"{MODEL_NAME} v1" in child.stdout  # the server serves production -> v1
    assert "probability" in child.stdout and "confidence" in child.stdout


def test_assay_predict_reports_a_table_without_the_features(server, tmp_path) -> None:
    path = tmp_path / "narrow.csv"
    pd.DataFrame({"mean radius": [1.0], "mean texture": [2.0]}).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["predict", "--url", server.url, str(path)])
    assert result.exit_code == 2 and "lacks 28 of the 30 WDBC feature columns" in result.output


def test_assay_predict_refuses_urls_it_cannot_use(full_rows) -> None:
    for url, expected in [
        ("ftp://127.0.0.1:21", "is not an http(s)://host[:port] (v2 REST) or grpc(s)://"),
        ("http://127.0.0.1:8080/v2", "has a path"),
        ("grpc://127.0.0.1", "needs the gRPC port"),
    ]:
        result = CliRunner().invoke(app, ["predict", "--url", url, str(full_rows)])
        assert result.exit_code == 2 and expected in " ".join(result.output.split()), url


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_says_when_the_model_is_unknown(server, full_rows, protocol) -> None:
    child = assay_predict("--url", endpoint(server, protocol), "--model", "nope", str(full_rows))
    assert child.returncode == 1
    said = one_sentence(child)
    assert "the server refused the request" in said and "nope" in said
    assert ("HTTP 404" if protocol == "rest" else "NOT_FOUND") in said


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_shows_the_servers_4xx_message(hardened, full_rows, protocol) -> None:
    """The hardened server's card records the features' training ranges: rows 1000 times too
    large are refused (400 / INVALID_ARGUMENT) with a message naming the feature, which the CLI
    passes on."""
    X, _, names = wdbc()
    far = full_rows.with_name("far.csv")
    pd.DataFrame(X[:2] * 1000, columns=names).to_csv(far, index=False)
    child = assay_predict("--url", endpoint(hardened, protocol), str(far))
    assert child.returncode == 1
    said = one_sentence(child)
    assert "the server refused the request" in said
    assert ("HTTP 400" if protocol == "rest" else "INVALID_ARGUMENT") in said
    assert "far outside the model's training range" in said and "mean radius" in said


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_says_when_nothing_listens(full_rows, protocol) -> None:
    scheme = "http" if protocol == "rest" else "grpc"
    url = f"{scheme}://127.0.0.1:{free_port()}"
    child = assay_predict("--url", url, "--timeout", "20", str(full_rows))
    assert child.returncode == 1
    assert f"cannot reach the inference server at {url}" in one_sentence(child)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assay_predict_says_when_the_server_does_not_answer(
    silent_server, full_rows, protocol
) -> None:
    scheme = "http" if protocol == "rest" else "grpc"
    url = f"{scheme}://{silent_server}"
    child = assay_predict("--url", url, "--timeout", "1.5", str(full_rows))
    assert child.returncode == 1
    assert f"{url} did not answer within 1.5 s" in one_sentence(child)
