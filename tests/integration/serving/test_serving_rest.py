"""v2 REST (and v1) conformance of the classifier server, against a real server process.

The client side is tritonclient.http (an independent v2 client library) and plain httpx for
malformed requests that no client library would send.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton_http
from _serving_support import MODEL_NAME, wdbc

pytestmark = pytest.mark.integration


def infer_body(rows: list[list[float]] | np.ndarray, datatype: str = "FP64", **extra) -> dict:
    array = np.asarray(rows)
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(array.shape),
                "datatype": datatype,
                "data": array.ravel().tolist(),
            }
        ],
        **extra,
    }


def expected(fixture, X: np.ndarray, version: str = "v1") -> tuple[np.ndarray, np.ndarray]:
    proba = fixture.pipeline(version).predict_proba(X)[:, 1]
    return proba, (proba >= fixture.card(version)["threshold"]).astype(int)


def test_health_and_metadata(server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    assert client.is_server_ready() and client.is_model_ready(MODEL_NAME)
    metadata = client.get_model_metadata(MODEL_NAME)
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 30]}]
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
        ("predict", "INT64"),
        ("probability", "FP32"),
        ("confidence", "FP32"),
    ]


@pytest.mark.parametrize(
    ("dtype", "datatype", "binary"), [(np.float32, "FP32", False), (np.float64, "FP64", True)]
)
def test_predictions_equal_the_joblib_model(
    server, registered_models, dtype, datatype, binary
) -> None:
    X = wdbc()[0][:500]
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    tensor = triton_http.InferInput("input-0", list(X.shape), datatype)
    tensor.set_data_from_numpy(X.astype(dtype), binary_data=binary)
    outputs = [
        triton_http.InferRequestedOutput(n, binary_data=binary)
        for n in ("predict", "probability", "confidence")
    ]
    result = client.infer(MODEL_NAME, [tensor], outputs=outputs)
    proba, labels = expected(registered_models, X.astype(dtype).astype(np.float64))
    assert result.get_response()["model_version"] == "v1"
    np.testing.assert_array_equal(result.as_numpy("predict"), labels)
    np.testing.assert_allclose(result.as_numpy("probability"), proba, atol=1e-6)
    np.testing.assert_allclose(
        result.as_numpy("confidence"), np.maximum(proba, 1 - proba), atol=1e-6
    )
    assert result.as_numpy("predict").dtype == np.int64
    assert result.as_numpy("probability").dtype == np.float32


def test_integer_input_and_requested_outputs(server, registered_models) -> None:
    import httpx

    X, _, _ = wdbc()
    rows = np.round(X[:4] * 1000).astype(np.int64)
    body = infer_body(rows, "INT64", outputs=[{"name": "probability"}])
    response = httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [o["name"] for o in outputs] == ["probability"]
    proba, _ = expected(registered_models, rows.astype(np.float64))
    np.testing.assert_allclose(outputs[0]["data"], proba, atol=1e-6)


def test_v1_predict(server, registered_models) -> None:
    import httpx

    X, _, _ = wdbc()
    response = httpx.post(
        f"{server.url}/v1/models/{MODEL_NAME}:predict", json={"instances": X[:5].tolist()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected(registered_models, X[:5])[1].tolist()


ROW = [1.0] * 30
BAD_REQUESTS = [
    ("wrong feature count", infer_body([[1.0] * 29]), 400, "29 features per row"),
    (
        "wrong shape",
        {"inputs": [{"name": "input-0", "shape": [30], "datatype": "FP32", "data": ROW}]},
        400,
        "expected [rows, 30]",
    ),
    (
        "values do not fill shape",
        {"inputs": [{"name": "input-0", "shape": [2, 30], "datatype": "FP32", "data": ROW}]},
        400,
        "has 30 values but shape [2, 30] needs 60",
    ),
    ("non-numeric", infer_body([["x", *ROW[1:]]], "FP32"), 400, "non-numeric"),
    (
        "NaN",
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 30],
                    "datatype": "FP64",
                    "data": [*ROW[:3], "NaN", *ROW[4:]],
                }
            ]
        },
        400,
        "non-numeric",
    ),
    ("wrong datatype", infer_body([ROW], "BYTES"), 400, "datatype BYTES"),
    (
        "empty batch",
        {"inputs": [{"name": "input-0", "shape": [0, 30], "datatype": "FP32", "data": []}]},
        400,
        "empty batch",
    ),
    ("batch over cap", infer_body([ROW] * 513), 400, "over this server's cap of 512"),
    (
        "unknown output",
        infer_body([ROW], outputs=[{"name": "logits"}]),
        400,
        "unknown output(s) ['logits']",
    ),
    (
        "unknown input",
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32", "data": ROW}]},
        400,
        "unknown input 'x'",
    ),
    ("two inputs", {"inputs": [infer_body([ROW])["inputs"][0]] * 2}, 400, "exactly one input"),
    (
        "missing shape",
        {"inputs": [{"name": "input-0", "datatype": "FP32", "data": ROW}]},
        422,
        "inputs.0.shape: Field required",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_get_4xx_with_a_message(server, case, body, status, message) -> None:
    import httpx

    response = httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_infinite_values_are_rejected(server) -> None:
    import httpx

    raw = '{"inputs":[{"name":"input-0","shape":[1,30],"datatype":"FP64","data":[%s]}]}'
    for token in ("Infinity", "NaN"):  # JSON extensions some encoders emit
        values = ",".join(["1.0"] * 7 + [token] + ["1.0"] * 22)
        response = httpx.post(
            f"{server.url}/v2/models/{MODEL_NAME}/infer",
            content=raw % values,
            headers={"content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert (
            "row 0, column 7 ('mean concave points')" in response.json()["error"]
            or "JSON" in response.json()["error"]
        )


def test_malformed_json_unknown_model_and_v1_errors(server) -> None:
    import httpx

    infer = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    response = httpx.post(
        infer, content=b'{"inputs": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]
    response = httpx.post(infer, content=b"{not json")  # curl -d style: no JSON content type
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]
    response = httpx.post(f"{server.url}/v2/models/nope/infer", json=infer_body([ROW]))
    assert response.status_code == 404 and "nope" in response.json()["error"]
    response = httpx.post(
        f"{server.url}/v1/models/{MODEL_NAME}:predict", json={"instances": [[1.0] * 3]}
    )
    assert response.status_code == 400 and "needs 30 feature values" in response.json()["error"]
    response = httpx.post(f"{server.url}/v1/models/{MODEL_NAME}:predict", json={"rows": []})
    assert response.status_code == 400 and "instances" in response.json()["error"]


def scrape(url: str) -> dict[str, float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    values = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def test_metrics_count_predictions_errors_and_latency(server) -> None:
    import httpx

    X, _, _ = wdbc()
    before = scrape(server.url)
    httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=infer_body(X[:10]))
    httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=infer_body([[1.0] * 29]))
    after = scrape(server.url)

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    predicted = sum(
        delta(f"predictions_total{{model={MODEL_NAME},prediction={p},version=v1}}")
        for p in ("benign", "malignant")
    )
    assert predicted == 10
    assert delta("inference_errors_total{reason=wrong_feature_count}") == 1
    assert delta("prediction_latency_seconds_count{}") == 1
    assert delta("model_confidence_count{}") == 10
    assert (
        after["model_info{estimator=adaboost,model=wdbc-classifier,threshold=0.3,version=v1}"] == 1
    )
    assert (
        "model_confidence_bucket{le=0.5}" in after
        and "prediction_latency_seconds_bucket{le=0.001}" in after
    )


def test_the_contract_pipeline_is_served_through_onnx_runtime(server) -> None:
    assert '"backend": "onnxruntime"' in server.logs()


def test_request_logs_are_sampled_at_info_and_carry_no_feature_values(server) -> None:
    import json

    import httpx

    with httpx.Client() as client:  # 1 in 100 requests is logged at info level
        for _ in range(100):
            client.post(
                f"{server.url}/v2/models/{MODEL_NAME}/infer", json=infer_body(wdbc()[0][:2])
            )
    logs = server.logs()
    lines = [json.loads(line) for line in logs.splitlines() if '"inference_request"' in line]
    assert lines and all(line["sampled_1_in"] == 100 for line in lines)
    assert {"request_id", "model_version", "batch_size", "latency_ms", "predictions"} <= set(
        lines[-1]
    )
    assert "17.99" not in logs and "122.8" not in logs  # values of the first row
    assert "request_rejected" in logs


def test_request_ids_are_echoed(server) -> None:
    import httpx

    infer = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    body = infer_body([wdbc()[0][0]], id="req-42")
    assert httpx.post(infer, json=body).json()["id"] == "req-42"
    response = httpx.post(infer, json=infer_body([wdbc()[0][0]]), headers={"x-request-id": "hdr-7"})
    assert response.json()["id"] == "hdr-7"
