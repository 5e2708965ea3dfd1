"""The bias scorer's request decoding: passages (and optional publishers) from v2 BYTES tensors
or a v1 ``instances`` body, each a :class:`BadRequest` when the client got it wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kserve.protocol.infer_type import InferInput, InferRequest

from assay.serving.tensors import BadRequest, check_batch_rows

TEXT, PUBLISHER = "text", "publisher"


@dataclass(frozen=True)
class Passages:
    texts: list[str]
    publishers: list[str | None]


def passages_from_v2(request: InferRequest, max_rows: int, max_chars: int) -> Passages:
    """The validated passages of a v2 request (``text`` and optional ``publisher``)."""
    by_name: dict[str, InferInput] = {}
    for tensor in request.inputs:
        if tensor.name not in (TEXT, PUBLISHER):
            raise BadRequest(
                f"unknown input {tensor.name!r}: this model takes {TEXT!r} (BYTES [n]) and "
                f"optionally {PUBLISHER!r} (BYTES [n])",
                "wrong_inputs",
            )
        if tensor.name in by_name:
            raise BadRequest(f"input {tensor.name!r} appears more than once", "wrong_inputs")
        by_name[tensor.name] = tensor
    if TEXT not in by_name:
        raise BadRequest(
            f"missing input {TEXT!r}: send the passages as a BYTES tensor of shape [n]",
            "missing_input",
        )
    texts = strings_of(by_name[TEXT], max_rows)
    check_texts(texts, max_chars)
    publishers: list[str | None] = [None] * len(texts)
    if PUBLISHER in by_name:
        given = strings_of(by_name[PUBLISHER], max_rows)
        if len(given) != len(texts):
            raise BadRequest(
                f"input {PUBLISHER!r} has {len(given)} values but {TEXT!r} has {len(texts)}; "
                "send one publisher per passage",
                "wrong_shape",
            )
        publishers = [value.strip() or None for value in given]
    return Passages(texts, publishers)


def strings_of(tensor: InferInput, max_rows: int) -> list[str]:
    """The UTF-8 strings of a BYTES tensor of shape [n] (or [n, 1])."""
    if tensor.datatype.upper() != "BYTES":
        raise BadRequest(
            f"input {tensor.name!r} has datatype {tensor.datatype}; send BYTES (UTF-8 strings)",
            "wrong_datatype",
        )
    shape = list(tensor.shape)
    flat = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
    if not flat or any(not isinstance(dim, int) or dim < 0 for dim in shape):
        raise BadRequest(
            f"input {tensor.name!r} has shape {shape}; expected [n], one string per passage",
            "wrong_shape",
        )
    check_batch_rows(shape[0], max_rows)
    try:
        values = tensor.as_numpy().ravel().tolist()
    except Exception as exc:  # ragged or short data, a broken binary tensor
        raise BadRequest(
            f"input {tensor.name!r}: its data does not fit shape {shape} ({exc})", "wrong_shape"
        ) from None
    return [_as_text(value, tensor.name, row) for row, value in enumerate(values)]


def _as_text(value: Any, name: str, row: int) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(
                f"input {name!r} row {row} is not valid UTF-8", "bad_encoding"
            ) from None
    if isinstance(value, str):
        return value
    raise BadRequest(
        f"input {name!r} row {row} is a {type(value).__name__}, not a string", "non_text"
    )


def check_texts(texts: Sequence[str], max_chars: int) -> None:
    for row, text in enumerate(texts):
        if not text.strip():
            raise BadRequest(f"passage {row} is empty: send some text to rate", "empty_text")
        if len(text) > max_chars:
            raise BadRequest(
                f"passage {row} has {len(text)} characters, over this server's cap of "
                f"{max_chars}; shorten or split it",
                "text_too_long",
            )


def passages_from_v1(payload: Any, max_rows: int, max_chars: int) -> Passages:
    """Passages of a v1 body: ``{"instances": ["text", ...]}`` or ``[{"text", "publisher"}]``."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        raise BadRequest(
            'a v1 request body is {"instances": ["passage", ...]} or '
            '{"instances": [{"text": "...", "publisher": "..."}, ...]}',
            "malformed_request",
        )
    check_batch_rows(len(instances), max_rows, "instances list")
    texts: list[str] = []
    publishers: list[str | None] = []
    for row, instance in enumerate(instances):
        if isinstance(instance, dict):
            text, publisher = instance.get(TEXT), instance.get(PUBLISHER)
        else:
            text, publisher = instance, None
        if not isinstance(text, str) or not (publisher is None or isinstance(publisher, str)):
            raise BadRequest(
                f"instance {row} needs a string 'text' (and an optional string 'publisher')",
                "non_text",
            )
        texts.append(text)
        publishers.append(publisher)
    check_texts(texts, max_chars)
    return Passages(texts, publishers)
