"""The bias scorer over v2 REST/gRPC (and v1), against a real server process.

The server is ``assay serve bias-scorer --sim``: the bundled simulated ensemble, rating through
the simulated LLM endpoint the server starts on 127.0.0.1 (its /sim/stats counts the calls).
Clients: tritonclient (http and grpc), an independent v2 client library, and httpx for requests
no client would send.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from _bias_scorer_support import (
    MODEL,
    RATERS,
    Scorer,
    launch,
    metric_value,
    outputs_of,
    received,
    text_tensor,
)

pytestmark = pytest.mark.integration

MAX_ROWS, MAX_CHARS = 4, 300
SUMMARY = ["bias_score", "score_std", "confidence", "biased", "explanation", "n_ratings"]
SECRET_TEXT = "Passage text that must never reach the logs: zebra-quartz-4711."


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scorer]:
    log = tmp_path_factory.mktemp("bias-scorer") / "cli.log"
    args = ["--sim", f"--max-batch-rows={MAX_ROWS}", f"--max-text-chars={MAX_CHARS}"]
    server = launch("cli", [*args, "--log-level=debug"], log)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim_url(scorer: Scorer) -> str:
    """Root URL of the simulated endpoint ``--sim`` started inside the server (from its log)."""
    for line in scorer.logs().splitlines():
        if '"sim_endpoint_started"' in line:
            return str(json.loads(line)["url"])
    raise AssertionError(f"the server did not log its simulated endpoint:\n{scorer.logs()}")


def sim_received(sim_url: str) -> dict[str, int]:
    return received(httpx.get(f"{sim_url}/sim/stats", timeout=5).json())


def http_client(scorer: Scorer) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(f"127.0.0.1:{scorer.http_port}")


def bytes_input(texts: list[str], name: str = "text", binary: bool = True) -> Any:
    tensor = triton_http.InferInput(name, [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=binary)
    return tensor


def test_metadata_lists_inputs_and_per_rater_outputs(scorer: Scorer) -> None:
    client = http_client(scorer)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    metadata = client.get_model_metadata(MODEL)
    assert metadata["inputs"] == [
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "publisher", "datatype": "BYTES", "shape": [-1]},
    ]
    outputs = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert outputs == {
        "bias_score": "FP32",
        "score_std": "FP32",
        "confidence": "FP32",
        "biased": "INT64",
        "explanation": "BYTES",
        "n_ratings": "INT64",
        "missing_raters": "BYTES",
        **{f"score_{rater}": "FP32" for rater in RATERS},
    }


@pytest.mark.parametrize("binary", [True, False])
def test_infer_returns_the_ensemble_summary_of_every_rater(scorer: Scorer, binary: bool) -> None:
    texts = [
        f"Lawmakers debated the budget bill for hours ({binary}).",
        f"Radical activists again demanded handouts paid by taxpayers ({binary}).",
    ]
    publisher = bytes_input(["Acme Press", "Beacon Books"], "publisher", binary)
    result = http_client(scorer).infer(MODEL, [bytes_input(texts, binary=binary), publisher])
    per_rater = np.stack([result.as_numpy(f"score_{rater}") for rater in RATERS], axis=1)
    assert per_rater.shape == (2, 3) and np.all(np.abs(per_rater) <= 2)
    np.testing.assert_allclose(result.as_numpy("bias_score"), per_rater.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(
        result.as_numpy("score_std"), per_rater.std(axis=1, ddof=1), atol=1e-5
    )
    assert result.as_numpy("n_ratings").tolist() == [3, 3]
    assert set(result.as_numpy("biased").tolist()) <= {0, 1}
    assert np.all((result.as_numpy("confidence") >= 0) & (result.as_numpy("confidence") <= 1))
    assert [m.decode() for m in result.as_numpy("missing_raters")] == ["", ""]
    for explanation in result.as_numpy("explanation"):
        assert explanation.decode().split(":", 1)[0] in RATERS
    parameters = result.get_response()["parameters"]
    assert parameters["raters"] == ",".join(RATERS)
    assert parameters["missing_raters"] == ""


def test_requested_outputs_only(scorer: Scorer) -> None:
    outputs = [
        triton_http.InferRequestedOutput("bias_score"),
        triton_http.InferRequestedOutput("score_sim-claude", binary_data=False),
    ]
    result = http_client(scorer).infer(
        MODEL, [bytes_input(["A short neutral report on rainfall."])], outputs=outputs
    )
    names = [output["name"] for output in result.get_response()["outputs"]]
    assert names == ["bias_score", "score_sim-claude"]
    assert result.as_numpy("bias_score").shape == (1,)


GRPC_CLIENT = """
import json, sys
import numpy as np
import tritonclient.grpc as triton_grpc

client = triton_grpc.InferenceServerClient(sys.argv[1])
tensor = triton_grpc.InferInput("text", [1], "BYTES")
tensor.set_data_from_numpy(np.array([sys.argv[3]], dtype=object))
result = client.infer(sys.argv[2], [tensor])
print(json.dumps({name: result.as_numpy(name).tolist() for name in ("n_ratings", "bias_score")}))
"""


def test_grpc_infer(scorer: Scorer) -> None:
    """tritonclient.grpc runs in a child interpreter: its protobuf module and KServe's define the
    same message names and cannot be imported into one process (the manifests tests import
    KServe)."""
    text = "Council approves new bike lanes downtown."
    target = f"127.0.0.1:{scorer.grpc_port}"
    child = subprocess.run(
        [sys.executable, "-c", GRPC_CLIENT, target, MODEL, text],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["n_ratings"] == [3]
    assert abs(result["bias_score"][0]) <= 2


def test_v1_predict(scorer: Scorer) -> None:
    body = {"instances": [{"text": "The mayor opened a library.", "publisher": "Acme"}]}
    response = httpx.post(f"{scorer.url}/v1/models/{MODEL}:predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    (row,) = response.json()["predictions"]
    assert row["n_ratings"] == 3 and row["missing_raters"] == ""
    assert math.isclose(
        row["bias_score"], np.mean([row[f"score_{r}"] for r in RATERS]), abs_tol=1e-5
    )


def test_a_repeated_passage_is_answered_from_the_cache(scorer: Scorer, sim_url: str) -> None:
    text = "A repeated passage about the harbour's new ferry timetable."
    first = scorer.infer([text])
    assert first.status_code == 200, first.text
    calls_before = sim_received(sim_url)
    hits_before = metric_value(scorer.metrics(), "llm_cache_hits_total")
    second = scorer.infer([text, text])
    assert second.status_code == 200, second.text
    assert sim_received(sim_url) == calls_before
    assert metric_value(scorer.metrics(), "llm_cache_hits_total") == hits_before + 6
    assert outputs_of(second)["bias_score"] == 2 * outputs_of(first)["bias_score"]


def too_long() -> str:
    return "x" * (MAX_CHARS + 1)


BAD_REQUESTS = [
    ("missing text", {"inputs": [text_tensor(["Acme"], "publisher")]}, 400, "missing input 'text'"),
    (
        "wrong datatype",
        {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
        400,
        "send BYTES",
    ),
    ("empty string", {"inputs": [text_tensor(["fine", "  "])]}, 400, "passage 1 is empty"),
    ("too long", {"inputs": [text_tensor([too_long()])]}, 400, f"cap of {MAX_CHARS}"),
    ("batch too large", {"inputs": [text_tensor(["a"] * (MAX_ROWS + 1))]}, 400, "over this"),
    ("empty batch", {"inputs": [text_tensor([])]}, 400, "empty batch"),
    (
        "not strings",
        {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": [1, 2]}]},
        400,
        "not a string",
    ),
    (
        "shape mismatch",
        {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]},
        400,
        "does not fit shape",
    ),
    (
        "unknown input",
        {"inputs": [text_tensor(["a"]), text_tensor(["b"], "author")]},
        400,
        "unknown input 'author'",
    ),
    (
        "publisher count",
        {"inputs": [text_tensor(["a", "b"]), text_tensor(["Acme"], "publisher")]},
        400,
        "one publisher per passage",
    ),
    (
        "unknown output",
        {"inputs": [text_tensor(["a"])], "outputs": [{"name": "score_nobody"}]},
        400,
        "unknown output",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_a_4xx_with_a_message(
    scorer: Scorer, body: dict[str, Any], status: int, message: str
) -> None:
    response = httpx.post(scorer.infer_url, json=body, timeout=30)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_malformed_json_is_a_400(scorer: Scorer) -> None:
    response = httpx.post(
        scorer.infer_url,
        content=b'{"inputs": [',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "malformed JSON" in response.json()["error"]


def test_metrics_and_logs(scorer: Scorer) -> None:
    response = scorer.infer([SECRET_TEXT])
    assert response.status_code == 200, response.text
    assert scorer.infer([""]).status_code == 400
    text = scorer.metrics()
    assert metric_value(text, "predictions_total", model=MODEL) >= 1
    assert metric_value(text, "prediction_latency_seconds_count") >= 1
    assert metric_value(text, "model_confidence_count") >= 1
    assert metric_value(text, "model_info", model=MODEL) == 1
    for rater in RATERS:
        assert metric_value(text, "bias_rater_score_count", rater=rater) >= 1
        assert metric_value(text, "llm_calls_total", rater=rater, outcome="success") >= 1
    assert metric_value(text, "inference_errors_total", reason="empty_text") >= 1
    logs = scorer.logs()
    request_lines = [json.loads(line) for line in logs.splitlines() if "inference_request" in line]
    assert request_lines and all("latency_ms" in line for line in request_lines)
    assert "zebra-quartz" not in logs
