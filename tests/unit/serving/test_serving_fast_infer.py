"""Which requests the lean REST route takes itself, and the KServe request it builds.

The integration test ``tests/integration/serving/test_serving_fast_rest.py`` checks the answers
end to end against KServe's route; these pin the decisions: a body the pydantic schema could
coerce or refuse is not plain (KServe's route answers it), and a plain body becomes the same
:class:`InferRequest` that ``InferRequest.from_inference_request`` builds.
"""

from __future__ import annotations

import json

import pytest
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from assay.serving.fast_infer import NotPlain, json_request, plain_request, request_headers

TENSOR = {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6.5]}


def encoded(document: object) -> bytes:
    return json.dumps(document).encode()


def described(request: InferRequest) -> tuple[object, ...]:
    inputs = [(i.name, i.shape, i.datatype, i.data, i.parameters) for i in request.inputs]
    outputs = (
        None
        if request.request_outputs is None
        else [(o.name, o.parameters) for o in request.request_outputs]
    )
    return request.id, request.model_name, request.parameters, inputs, outputs


@pytest.mark.parametrize(
    "document",
    [
        {"inputs": [TENSOR]},
        {"id": "r1", "inputs": [TENSOR], "outputs": [{"name": "predict"}]},
        {"inputs": [TENSOR, {**TENSOR, "name": "other"}], "outputs": []},
        {"inputs": [], "ignored": 1},
        {"inputs": [TENSOR], "parameters": None, "outputs": None},
    ],
)
def test_a_plain_body_becomes_the_request_kserve_builds(document: dict) -> None:
    ours = plain_request(encoded(document), "m")
    kserve = InferRequest.from_inference_request(InferenceRequest.model_validate(document), "m")
    assert described(ours) == described(kserve)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"",
        b"[1]",
        b'{"inputs": [{"name": "input-0", "shape": [1, 1], "datatype": "FP64", "data": [NaN]}]}',
        '{"inputs": [], "id": "\xff"}'.encode("latin-1"),
        encoded({"inputs": "x"}),
        encoded({"id": 5, "inputs": [TENSOR]}),
        encoded({"inputs": [TENSOR], "parameters": {"a": 1}}),
        encoded({"inputs": [{**TENSOR, "parameters": {"a": 1}}]}),
        encoded({"inputs": [{**TENSOR, "shape": ["2", 3]}]}),
        encoded({"inputs": [{**TENSOR, "shape": [2.0, 3]}]}),
        encoded({"inputs": [{**TENSOR, "shape": [True, 3]}]}),
        encoded({"inputs": [{**TENSOR, "data": 1}]}),
        encoded({"inputs": [{**TENSOR, "datatype": 3}]}),
        encoded({"inputs": [{**TENSOR, "datatype": "FP16"}]}),
        encoded({"inputs": [{k: v for k, v in TENSOR.items() if k != "name"}]}),
        encoded({"inputs": [TENSOR], "outputs": {"name": "predict"}}),
        encoded({"inputs": [TENSOR], "outputs": [{"name": 1}]}),
        encoded({"inputs": [TENSOR], "outputs": [{"name": "p", "parameters": {"b": True}}]}),
    ],
)
def test_anything_else_is_left_to_kserves_route(raw: bytes) -> None:
    with pytest.raises(NotPlain):
        plain_request(raw, "m")


@pytest.mark.parametrize(
    ("headers", "plain"),
    [
        ([], True),
        ([(b"content-type", b"application/json")], True),
        ([(b"content-type", b"Application/JSON; charset=utf-8")], True),
        ([(b"content-type", b"application/x-www-form-urlencoded")], True),
        ([(b"content-type", b"text/json")], False),
        ([(b"content-type", b"application/cloudevents+json")], False),
        ([(b"inference-header-content-length", b"10")], False),
        ([(b"content-type", b"application/json"), (b"ce-specversion", b"1.0")], False),
    ],
)
def test_only_json_bodies_take_the_lean_route(
    headers: list[tuple[bytes, bytes]], plain: bool
) -> None:
    assert json_request(headers) is plain


def test_headers_keep_the_first_of_repeated_names_as_starlette_does() -> None:
    raw = [(b"x-request-id", b"first"), (b"x-request-id", b"second"), (b"accept", b"*/*")]
    assert request_headers(raw) == {"x-request-id": "first", "accept": "*/*"}
