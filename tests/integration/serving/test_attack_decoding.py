"""Attack: binary-extension and JSON requests that break KServe's request decoding.

Each must be a 4xx with a message, counted in ``inference_errors_total`` under a reason, on a
real classifier server (and the bias scorer for the binary header) on 127.0.0.1: the classifier
both as a child process and as the dev overlay's pod run by podman from the manifests.
"""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pytest
from _bias_scorer_support import MODEL as SCORER
from _bias_scorer_support import metric_value
from _serving_support import MODEL_NAME

pytestmark = pytest.mark.integration

ROW = np.ones((1, 30), dtype=np.float32)


def binary_body(header: dict, raw: bytes) -> tuple[bytes, int]:
    text = json.dumps(header).encode()
    return text + raw, len(text)


def tensor_header(size: int, shape: list[int] | None = None, datatype: str = "FP32") -> dict:
    parameters = {"binary_data_size": size}
    tensor = {"name": "input-0", "shape": shape or [1, 30], "datatype": datatype}
    return {"inputs": [{**tensor, "parameters": parameters}]}


def post_binary(url: str, body: bytes, length: str) -> httpx.Response:
    headers = {
        "inference-header-content-length": length,
        "content-type": "application/octet-stream",
    }
    return httpx.post(url, content=body, headers=headers, timeout=30)


RAW = ROW.tobytes()
GOOD, GOOD_LENGTH = binary_body(tensor_header(len(RAW)), RAW)
ATTACKS = [
    ("header length abc", GOOD, "abc", "inference-header-content-length"),
    ("header length negative", GOOD, "-5", "inference-header-content-length"),
    ("header length past the body", GOOD, str(len(GOOD) + 10), "inference-header-content-length"),
    ("header length cuts the JSON", GOOD, str(GOOD_LENGTH - 3), "JSON"),
    (
        "binary_data_size over the body",
        *binary_body(tensor_header(10_000), RAW),
        "binary_data_size",
    ),
    ("binary_data_size does not fit", *binary_body(tensor_header(7), RAW[:7]), "binary_data_size"),
    ("binary_data_size not a number", *binary_body(tensor_header("x"), RAW), "binary_data_size"),  # type: ignore[arg-type]
    ("values do not fit the shape", *binary_body(tensor_header(len(RAW), [2, 30]), RAW), "shape"),
    ("no inputs key", *binary_body({"outputs": []}, b""), "inputs"),
    ("input without a name", *binary_body({"inputs": [{"shape": [1, 30]}]}, b""), "name"),
    ("inputs not a list", *binary_body({"inputs": 3}, b""), "inputs"),
    ("header is a list", *binary_body([1, 2], b""), "JSON object"),  # type: ignore[arg-type]
]


def normalise(case: tuple) -> tuple[str, bytes, str, str]:
    name, body, length, message = case
    return name, body, str(length), message


@pytest.mark.parametrize(
    ("case", "body", "length", "message"),
    [normalise(c) for c in ATTACKS],
    ids=[c[0] for c in ATTACKS],
)
def test_broken_binary_request_gets_a_4xx_counted_by_reason(
    classifier_endpoint, case, body, length, message
) -> None:
    url = classifier_endpoint.url
    before = metric_value(httpx.get(f"{url}/metrics").text, "inference_errors_total")
    response = post_binary(f"{url}/v2/models/{MODEL_NAME}/infer", body, length)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["error"]
    after = metric_value(httpx.get(f"{url}/metrics").text, "inference_errors_total")
    assert after == before + 1


def test_binary_header_length_abc_on_the_bias_scorer(hardened_scorer) -> None:
    raw = struct.pack("<I", 5) + b"hello"
    header = {
        "inputs": [
            {
                "name": "text",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": 9},
            }
        ]
    }
    body, _ = binary_body(header, raw)
    url = f"{hardened_scorer.url}/v2/models/{SCORER}/infer"
    response = post_binary(url, body, "abc")
    assert response.status_code == 400, response.text
    assert "inference-header-content-length" in response.json()["error"]
    reason = "bad_binary_header"
    assert metric_value(hardened_scorer.metrics(), "inference_errors_total", reason=reason) >= 1


def test_well_formed_binary_request_still_succeeds(classifier_endpoint) -> None:
    url = f"{classifier_endpoint.url}/v2/models/{MODEL_NAME}/infer"
    response = post_binary(url, GOOD, str(GOOD_LENGTH))
    assert response.status_code == 200, response.text
