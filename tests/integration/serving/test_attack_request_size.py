"""Attack: request bodies far larger than any legitimate batch (the pods have 512 Mi).

Real servers on 127.0.0.1 with ``--max-request-bytes=MAX_REQUEST_BYTES``, and the dev overlay's
pods run by podman from the rendered manifests (default limits); the requests go over a
raw socket so the test controls the headers and the streaming exactly. Each is answered 413
before the body is parsed, and the server keeps serving.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from _bias_scorer_support import MODEL as SCORER
from _bias_scorer_support import metric_value
from _hostile import raw_post
from _serving_support import MAX_REQUEST_BYTES, MODEL_NAME, wdbc

from assay.serving.settings import BiasScorerServerSettings, ClassifierServerSettings

pytestmark = pytest.mark.integration


def raw_request(port: int, path: str, head: list[str], chunks: list[bytes]) -> tuple[int, str]:
    """Send a request head and body chunks as given; (status, body text) of the answer."""
    return raw_post(port, path, head, chunks)


def chunked(body: bytes, size: int = 8192) -> list[bytes]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]


def huge_json(n_values: int) -> bytes:
    values = ",".join(["1.5"] * n_values)
    head = '{"inputs":[{"name":"input-0","shape":[1,30],"datatype":"FP64","data":['
    return (head + values + "]}]}").encode()


def _manifest_limit(pod, settings: type) -> int:
    """The limit of a pod's server: the default, as long as the manifest sets neither the flag
    nor the variable (checked, so a manifest that sets one makes this test say so)."""
    serving = pod.serving
    assert not any(a.startswith("--max-request-bytes") for a in serving.get("args", []))
    assert "ASSAY_MAX_REQUEST_BYTES" not in {e["name"] for e in serving.get("env", [])}
    return int(settings().max_request_bytes)


@pytest.fixture(
    params=[
        "classifier",
        "bias-scorer",
        pytest.param("classifier-container", marks=pytest.mark.container),
        pytest.param("bias-scorer-container", marks=pytest.mark.container),
    ]
)
def target(request) -> tuple[object, str, int]:
    """(server, infer path, its request-size limit): the hardened child processes, then the dev
    overlay's pods run by podman from the manifests (with the servers' default limits)."""
    classifier = (f"/v2/models/{MODEL_NAME}/infer", ClassifierServerSettings)
    scorer = (f"/v2/models/{SCORER}/infer", BiasScorerServerSettings)
    if request.param == "classifier":
        return request.getfixturevalue("hardened"), classifier[0], MAX_REQUEST_BYTES
    if request.param == "bias-scorer":
        return request.getfixturevalue("hardened_scorer"), scorer[0], MAX_REQUEST_BYTES
    path, settings = classifier if request.param.startswith("classifier") else scorer
    pod = request.getfixturevalue(
        "manifest_classifier" if settings is ClassifierServerSettings else "manifest_scorer"
    )
    return pod, path, _manifest_limit(pod, settings)


def test_declared_huge_content_length_is_refused_before_the_body(target) -> None:
    """Only the head is sent: a server that waited for the body would never answer (the socket
    times out). Sending a first body chunk made the test flaky: the server closes with that chunk
    unread, its TCP reset can reach the client before the client reads the 413."""
    server, path, _ = target
    head = ["Content-Type: application/json", "Content-Length: 5000000000"]
    status, text = raw_request(server.http_port, path, head, [])
    assert status == 413, text
    assert "--max-request-bytes" in text
    assert (
        metric_value(
            httpx.get(f"{server.url}/metrics").text,
            "inference_errors_total",
            reason="request_too_large",
        )
        >= 1
    )


def test_streamed_body_over_the_limit_is_refused(target) -> None:
    server, path, limit = target
    body = huge_json(limit // 3)  # about 1.3 x the limit, no Content-Length
    head = ["Content-Type: application/json", "Transfer-Encoding: chunked"]
    status, text = raw_request(server.http_port, path, head, chunked(body))
    assert status == 413, text
    assert f"{limit} bytes" in text


def test_binary_extension_body_over_the_limit_is_refused(hardened) -> None:
    raw = np.ones((MAX_REQUEST_BYTES // 120 + 10, 30), dtype=np.float32).tobytes()
    header = (
        b'{"inputs":[{"name":"input-0","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":%d}}]}'
        % len(raw)
    )
    head = [
        "Content-Type: application/octet-stream",
        f"Inference-Header-Content-Length: {len(header)}",
        "Transfer-Encoding: chunked",
    ]
    status, text = raw_request(
        hardened.http_port, f"/v2/models/{MODEL_NAME}/infer", head, chunked(header + raw)
    )
    assert status == 413, text


def test_the_servers_still_serve_after_oversized_requests(hardened, hardened_scorer) -> None:
    rows = wdbc()[0][:2]
    good = {
        "inputs": [
            {"name": "input-0", "shape": [2, 30], "datatype": "FP64", "data": rows.ravel().tolist()}
        ]
    }
    assert httpx.post(f"{hardened.url}/v2/models/{MODEL_NAME}/infer", json=good).status_code == 200
    assert hardened_scorer.infer(["A short, calm passage."]).status_code == 200


def test_default_limits_admit_the_largest_legitimate_batch() -> None:
    classifier = ClassifierServerSettings()
    rows = np.full((classifier.max_batch_rows, 30), -1.2345678901234567e-05)
    assert (
        len(huge_json(0)) + len(",".join(repr(v) for v in rows.ravel()))
        < classifier.max_request_bytes
    )
    scorer = BiasScorerServerSettings()
    escaped = scorer.max_batch_rows * (scorer.max_text_chars * len("\\u00e9") + 16)
    assert escaped < scorer.max_request_bytes


def test_grpc_message_over_the_limit_is_refused(hardened) -> None:
    """KServe's own generated stubs (the server's protobuf module), in this process."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    rows = MAX_REQUEST_BYTES // 120 + 10
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP32", shape=[rows, 30]
    )
    request = pb.ModelInferRequest(
        model_name=MODEL_NAME,
        inputs=[tensor],
        raw_input_contents=[np.ones((rows, 30), dtype=np.float32).tobytes()],
    )
    with grpc.insecure_channel(hardened.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
        small = pb.ModelInferRequest(
            model_name=MODEL_NAME,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="input-0", datatype="FP32", shape=[1, 30]
                )
            ],
            raw_input_contents=[wdbc()[0][:1].astype(np.float32).tobytes()],
        )
        assert stub.ModelInfer(small, timeout=30).model_name == MODEL_NAME
