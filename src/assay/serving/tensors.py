"""v2/v1 request decoding and its checks, and the v2 output tensor.

A client mistake is a :class:`BadRequest`: a 400 (REST) or INVALID_ARGUMENT (gRPC) with a
sentence naming the problem, counted in ``inference_errors_total`` under its short ``reason``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest

NUMERIC_DATATYPES: dict[str, Any] = {
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}


ASCII_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(text: str | bytes) -> int | None:
    """The value of a header or parameter that must be a whole number: ASCII digits only (around
    spaces), at most 18 of them; None otherwise. ``str.isdigit`` and ``int`` also take "²",
    "٣" or "1_000", which a client must not be able to send as a length."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    stripped = text.strip(" \t")
    return int(stripped) if ASCII_DIGITS.fullmatch(stripped) else None


class BadRequest(InvalidInput):
    """A request the client got wrong; ``reason`` is the metric label, the text is the message,
    ``status`` the REST status (400 unless the problem has its own, e.g. 413)."""

    def __init__(self, message: str, reason: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = reason
        self.status = status


def single_input(request: InferRequest, expected_name: str) -> InferInput:
    """The request's only input tensor, which must be called ``expected_name``."""
    names = [tensor.name for tensor in request.inputs]
    if len(names) != 1:
        raise BadRequest(
            f"expected exactly one input tensor named {expected_name!r}, got {len(names)}: {names}",
            "wrong_inputs",
        )
    if names[0] != expected_name:
        raise BadRequest(
            f"unknown input {names[0]!r}: this model takes one input named {expected_name!r}",
            "wrong_inputs",
        )
    return request.inputs[0]


def check_batch_rows(rows: int, max_rows: int, what: str = "batch") -> None:
    if rows == 0:
        raise BadRequest(f"empty {what}: send at least one row", "empty_batch")
    if rows > max_rows:
        raise BadRequest(
            f"{what} of {rows} rows is over this server's cap of {max_rows} rows; "
            "split it into smaller requests",
            "batch_too_large",
        )


def tensor_to_matrix(
    tensor: InferInput, n_features: int, max_rows: int, feature_names: Sequence[str] = ()
) -> np.ndarray:
    """A validated float64 ``[rows, n_features]`` matrix from a v2 input tensor.

    Checks, in order: numeric datatype, 2-D shape with ``n_features`` columns, row count
    (non-empty, at most ``max_rows``), value count matching the shape, numeric and finite values.
    """
    datatype = tensor.datatype.upper()
    if datatype not in NUMERIC_DATATYPES:
        raise BadRequest(
            f"input {tensor.name!r} has datatype {datatype}; send FP32, FP64 or an INT type",
            "wrong_datatype",
        )
    shape = list(tensor.shape)
    if len(shape) != 2 or any(not isinstance(dim, int) or dim < 0 for dim in shape):
        raise BadRequest(
            f"input {tensor.name!r} has shape {shape}; expected [rows, {n_features}]",
            "wrong_shape",
        )
    if shape[1] != n_features:
        raise BadRequest(
            f"input {tensor.name!r} has {shape[1]} features per row; this model needs "
            f"{n_features} (shape [rows, {n_features}])",
            "wrong_feature_count",
        )
    check_batch_rows(shape[0], max_rows)
    matrix = _decode_values(tensor, datatype, shape)
    check_finite(matrix, tensor.name, feature_names)
    return matrix


def _decode_values(tensor: InferInput, datatype: str, shape: list[int]) -> np.ndarray:
    expected = shape[0] * shape[1]
    raw = tensor._raw_data  # binary (gRPC raw_input_contents / REST binary extension)
    flat: np.ndarray | None
    try:
        if raw is not None:
            flat = np.frombuffer(raw, dtype=NUMERIC_DATATYPES[datatype])
        else:
            flat = None if tensor.data is None else np.asarray(tensor.data).ravel()
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            f"input {tensor.name!r} has non-numeric values ({exc}); send numbers only",
            "non_numeric",
        ) from None
    if flat is not None and flat.size and flat.dtype.kind not in "fiub":
        raise BadRequest(
            f"input {tensor.name!r} has non-numeric values; send numbers only", "non_numeric"
        )
    if flat is None or flat.size != expected:
        got = 0 if flat is None else flat.size
        raise BadRequest(
            f"input {tensor.name!r} has {got} values but shape {shape} needs {expected}",
            "wrong_shape",
        )
    return flat.astype(np.float64, copy=False).reshape(shape)


def check_finite(matrix: np.ndarray, name: str, feature_names: Sequence[str] = ()) -> None:
    finite = np.isfinite(matrix)
    if finite.all():
        return
    row, col = (int(i) for i in np.argwhere(~finite)[0])
    feature = f" ({feature_names[col]!r})" if col < len(feature_names) else ""
    raise BadRequest(
        f"input {name!r} has {int((~finite).sum())} non-finite values (NaN or infinity), "
        f"the first at row {row}, column {col}{feature}",
        "non_finite",
    )


def check_in_range(
    matrix: np.ndarray, low: np.ndarray, high: np.ndarray, feature_names: Sequence[str]
) -> None:
    """Refuse values outside [low, high] per column: the card's training range widened by
    ``RANGE_MARGIN`` spans (:mod:`assay.serving.classifier_versions`)."""
    outside = (matrix < low) | (matrix > high)
    if not outside.any():
        return
    row, col = (int(i) for i in np.argwhere(outside)[0])
    raise BadRequest(
        f"input has {int(outside.sum())} values far outside the model's training range, the "
        f"first at row {row}, column {col} ({feature_names[col]!r}): {matrix[row, col]:.6g} is "
        f"not in [{low[col]:.6g}, {high[col]:.6g}] (the training range widened by one span "
        "on each side)",
        "out_of_range",
    )


def check_finite_proba(proba: np.ndarray) -> None:
    """A probability that is not finite never becomes a label."""
    bad = ~np.isfinite(proba)
    if bad.any():
        raise BadRequest(
            f"the model's probability for row {int(np.argmax(bad))} is not finite: its values "
            "are too far outside the data the model was trained on to be scored",
            "non_finite_probability",
        )


def rows_from_v1(payload: Any, n_features: int, max_rows: int) -> np.ndarray:
    """A validated matrix from a v1 ``{"instances": [[...], ...]}`` body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest(
            'a v1 request body is {"instances": [[feature values], ...]}', "malformed_request"
        )
    instances = payload["instances"]
    if not isinstance(instances, list) or not all(isinstance(row, list) for row in instances):
        raise BadRequest('"instances" must be a list of rows (lists of numbers)', "wrong_shape")
    check_batch_rows(len(instances), max_rows, "instances list")
    widths = {len(row) for row in instances}
    if widths != {n_features}:
        raise BadRequest(
            f"every instance needs {n_features} feature values; got rows of length "
            f"{sorted(widths)}",
            "wrong_feature_count",
        )
    try:
        matrix = np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"instances have non-numeric values ({exc})", "non_numeric") from None
    check_finite(matrix, "instances")
    return matrix


def selected_outputs(request: InferRequest, known: Sequence[str]) -> list[str]:
    """Names of the outputs to return: the requested ones (checked) or all of them."""
    if not request.request_outputs:
        return list(known)
    names = [output.name for output in request.request_outputs]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadRequest(
            f"unknown output(s) {unknown}; this model returns {list(known)}", "unknown_output"
        )
    return names


def request_id(headers: dict[str, str] | None, request: Any = None) -> str:
    rid = getattr(request, "id", None)
    if not rid and headers:
        rid = headers.get("x-request-id")
    return str(rid) if rid else uuid.uuid4().hex


def infer_output(name: str, datatype: str, array: np.ndarray, request: InferRequest) -> InferOutput:
    """One output tensor of a v2 response, encoded the way the request's protocol needs."""
    output = InferOutput(name=name, shape=[len(array)], datatype=datatype)
    if request.from_grpc:  # KServe's to_grpc cannot take numpy data with raw outputs
        output.set_data_from_numpy(array, binary_data=request.use_binary_outputs)
    else:  # to_rest encodes it, per requested output (JSON or the binary extension)
        output.data = array
    return output
