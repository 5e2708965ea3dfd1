"""KServe's data plane with strict REST request decoding and honest readiness.

KServe decodes a binary-extension body (``inference-header-content-length`` JSON header, then raw
tensor bytes) with no checks: a header length of ``abc``, a missing ``inputs`` key or a
``binary_data_size`` that does not fit the shape end as a 500. :class:`StrictDataPlane` checks
every part and answers a :class:`BadRequest` (400, counted by reason) instead. Server readiness
(``/v2/health/ready``) is true only while every served model is ready (KServe's is always true).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import (
    InferInput,
    InferRequest,
    RequestedOutput,
)

from assay.serving.tensors import NUMERIC_DATATYPES, BadRequest, whole_number

TENSOR_KEYS = ("name", "shape", "datatype")
DEFAULT_MAX_VALUES = 1 << 20


class StrictDataPlane(DataPlane):
    """A :class:`DataPlane` whose REST decoding turns every client mistake into a 400; a binary
    tensor declaring more than ``max_values`` values is refused before its bytes are decoded."""

    def __init__(self, *args: Any, max_values: int = DEFAULT_MAX_VALUES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_values = max_values

    def decode_inference_request(self, body: Any, headers: dict[str, Any], model_name: str) -> Any:
        if isinstance(body, bytes):
            length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            return request_from_binary(body, length, model_name, self.max_values)
        try:
            return InferRequest.from_inference_request(body, model_name)
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"invalid v2 inference request: {exc}", "malformed_request") from None

    async def ready(self) -> bool:
        models = self.model_registry.get_models()
        return bool(models) and all([await model.healthy() for model in models.values()])


def request_from_binary(
    body: bytes, header_length: Any, model_name: str, max_values: int = DEFAULT_MAX_VALUES
) -> InferRequest:
    """An :class:`InferRequest` from a binary-extension body, every part checked."""
    length = _header_length(header_length, len(body))
    try:
        header = orjson.loads(body[:length])
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the JSON header (the first {length} bytes, per {INFERENCE_CONTENT_LENGTH_HEADER}) "
            f"is not valid JSON: {exc}",
            "bad_binary_header",
        ) from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise BadRequest(
            'the JSON header must be a JSON object with an "inputs" list', "malformed_request"
        )
    raw, inputs = memoryview(body)[length:], []
    for index, tensor in enumerate(header["inputs"]):
        infer_input, raw = _input(tensor, index, raw, max_values)
        inputs.append(infer_input)
    if len(raw):
        raise BadRequest(
            f"{len(raw)} bytes after the last input's binary_data_size; the sizes must add up "
            "to the body after the JSON header",
            "bad_binary_data",
        )
    return InferRequest(
        model_name=model_name,
        request_id=_optional_text(header.get("id"), "id"),
        parameters=_optional_dict(header.get("parameters"), "parameters"),
        infer_inputs=inputs,
        request_outputs=_outputs(header.get("outputs")),
    )


def _header_length(value: Any, body_length: int) -> int:
    length = whole_number(value) if isinstance(value, str | bytes) else None
    if length is None or length > body_length:
        raise BadRequest(
            f"{INFERENCE_CONTENT_LENGTH_HEADER} must be the byte length of the JSON header, a "
            f"whole number (ASCII digits) of at most the body's {body_length} bytes; got "
            f"{value!r}",
            "bad_binary_header",
        )
    return length


def _input(
    tensor: Any, index: int, raw: memoryview, max_values: int
) -> tuple[InferInput, memoryview]:
    """One input tensor of the header, its data read from JSON or from the front of ``raw``."""
    if not isinstance(tensor, dict) or any(key not in tensor for key in TENSOR_KEYS):
        raise BadRequest(
            f"input {index} must be an object with name, shape and datatype", "malformed_request"
        )
    name, shape, datatype = (tensor[key] for key in TENSOR_KEYS)
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise BadRequest(f"input {index}: name and datatype must be strings", "malformed_request")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"input {name!r} has shape {shape!r}; send whole numbers", "wrong_shape")
    parameters = _optional_dict(tensor.get("parameters"), f"input {name!r} parameters") or {}
    infer_input = InferInput(name=name, shape=shape, datatype=datatype, parameters=parameters)
    if "binary_data_size" not in parameters:
        if not isinstance(tensor.get("data"), list):
            raise BadRequest(f"input {name!r} has neither data nor binary_data_size", "no_data")
        infer_input.data = tensor["data"]
        return infer_input, raw
    size = parameters["binary_data_size"]
    if type(size) is not int or not 0 <= size <= len(raw):
        raise BadRequest(
            f"input {name!r} has binary_data_size {size!r}; it must be a whole number of at most "
            f"the {len(raw)} bytes left in the body",
            "bad_binary_data",
        )
    infer_input.data = _values(bytes(raw[:size]), name, shape, datatype.upper(), max_values)
    return infer_input, raw[size:]


def _values(data: bytes, name: str, shape: list[int], datatype: str, max_values: int) -> list[Any]:
    expected = int(np.prod(shape, dtype=np.float64))
    if expected > max_values:
        raise BadRequest(
            f"input {name!r} has shape {shape}, {expected} values; this server's requests hold "
            f"at most {max_values}",
            "body_too_complex",
        )
    try:
        if datatype == "BYTES":
            return _bytes_values(data, name, shape, expected)
        if datatype not in NUMERIC_DATATYPES:
            raise BadRequest(f"input {name!r} has datatype {datatype}", "wrong_datatype")
        array = np.frombuffer(data, dtype=NUMERIC_DATATYPES[datatype])
    except (ValueError, TypeError, IndexError, OverflowError, struct.error) as exc:
        raise BadRequest(
            f"input {name!r}: its binary_data_size bytes are not whole {datatype} values ({exc})",
            "bad_binary_data",
        ) from None
    if array.size != expected:
        raise _count_mismatch(name, str(array.size), datatype, shape, expected)
    return list(array.tolist())


def _bytes_values(data: bytes, name: str, shape: list[int], expected: int) -> list[Any]:
    """The length-prefixed strings of a BYTES tensor, reading no more than ``expected`` + 1."""
    values: list[bytes] = []
    offset = 0
    while offset < len(data) and len(values) <= expected:
        (length,) = struct.unpack_from("<I", data, offset)
        start, offset = offset + 4, offset + 4 + length
        if offset > len(data):
            raise ValueError(f"string {len(values)} runs past the end of its bytes")
        values.append(data[start:offset])
    if len(values) != expected:
        found = str(len(values)) if offset >= len(data) else f"more than {expected}"
        raise _count_mismatch(name, found, "BYTES", shape, expected)
    return values


def _count_mismatch(
    name: str, found: str, datatype: str, shape: list[int], expected: int
) -> BadRequest:
    return BadRequest(
        f"input {name!r} has {found} {datatype} values in its binary_data_size bytes "
        f"but shape {shape} needs {expected}",
        "wrong_shape",
    )


def _optional_text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadRequest(f"{what} must be a string", "malformed_request")


def _optional_dict(value: Any, what: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise BadRequest(f"{what} must be a JSON object", "malformed_request")


def _outputs(value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in value
    ):
        raise BadRequest('"outputs" must be a list of {"name": ...} objects', "malformed_request")
    return [
        RequestedOutput(name=item["name"], parameters=_optional_dict(item.get("parameters"), "x"))
        for item in value
    ]
