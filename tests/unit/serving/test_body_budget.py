"""The JSON structure budget on request bytes: what it refuses, and that text inside strings
(brackets, commas, escaped quotes) never counts against it."""

from __future__ import annotations

import json

import pytest

from assay.serving.body_budget import JsonBudget, nesting_depth
from assay.serving.tensors import BadRequest

CLASSIFIER = JsonBudget.for_tensors(rows=1024, values_per_row=30)
SCORER = JsonBudget.for_tensors(rows=64, values_per_row=1, tensors=2, text=True)


def v2(data: object, shape: list[int], datatype: str = "FP64", name: str = "input-0") -> bytes:
    tensor = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    return json.dumps({"inputs": [tensor], "parameters": {"x": 1}}).encode()


def test_the_largest_legitimate_requests_fit() -> None:
    flat = [0.5] * (1024 * 30)
    nested = [[0.5] * 30 for _ in range(1024)]
    CLASSIFIER.check(v2(flat, [1024, 30]))
    CLASSIFIER.check(v2(nested, [1024, 30]))
    CLASSIFIER.check(json.dumps({"instances": nested}).encode())
    text = 'He said "no", then [left], {twice}, \\ and ], [ again. ' * 350
    SCORER.check(v2([text] * 64, [64], "BYTES", "text"))


@pytest.mark.parametrize(
    ("body", "budget", "found"),
    [
        (b'{"inputs":[{"data":[' + b"[]," * 2000 + b"[]]}]}", CLASSIFIER, "arrays and objects"),
        (b'{"inputs":[{"data":[' + b"0," * 40_000 + b"0]}]}", CLASSIFIER, "JSON values"),
        (b'{"inputs":[' + b'{"name":"t","data":["a"]},' * 300 + b"{}]}", SCORER, "JSON strings"),
        (b'{"a":' + b"[" * 20 + b"]" * 20 + b"}", CLASSIFIER, "levels deep"),
    ],
    ids=["empty-lists", "values", "tiny-tensors", "nesting"],
)
def test_bodies_over_the_budget_are_refused_with_a_message(body, budget, found) -> None:
    with pytest.raises(BadRequest) as refused:
        budget.check(body)
    assert found in str(refused.value)
    assert refused.value.status == 400


def test_escaped_quotes_do_not_end_a_string() -> None:
    """A passage of escaped quotes and brackets is one string: nothing in it counts."""
    body = v2(['\\" [[[[ ,,,, \\" ' * 5000], [1], "BYTES", "text")
    SCORER.check(body)


def test_depth_ignores_malformed_closers() -> None:
    assert nesting_depth(b"[[[]]]") == 3
    assert nesting_depth(b"]]]][") == 0  # the parser refuses it


CAPPED = JsonBudget.for_tensors(rows=64, values_per_row=1, tensors=2, text=True)
CAPPED = JsonBudget(
    CAPPED.max_containers, CAPPED.max_values, CAPPED.max_strings, max_string_bytes=24_000
)


def test_a_string_over_the_byte_cap_is_refused_before_parsing() -> None:
    """20,000 'é' are 20,000 characters but 40,000 UTF-8 bytes (120,000 bytes JSON-escaped):
    refused by its decoded size, not its length in characters or in the body."""
    body = v2(["\u00e9" * 20_000] * 64, [64], "BYTES", "text")
    with pytest.raises(BadRequest) as refused:
        CAPPED.check(body)
    assert "40,000 UTF-8 bytes" in str(refused.value)
    assert refused.value.code == "string_too_long"


def test_strings_at_the_byte_cap_pass_however_they_are_escaped() -> None:
    for char in ("a", "\u00e9", "\u4e2d", "\U0001f600", "\x01"):
        text = char * (24_000 // len(char.encode()))
        CAPPED.check(v2([text] * 64, [64], "BYTES", "text"))
        CAPPED.check(json.dumps({"instances": [{"text": text}]}, ensure_ascii=False).encode())


def test_a_long_key_or_parameter_counts_like_a_passage() -> None:
    body = json.dumps({"inputs": [], "parameters": {"x" * 24_001: 1}}).encode()
    with pytest.raises(BadRequest, match="24,001 UTF-8 bytes"):
        CAPPED.check(body)


def test_malformed_long_bodies_are_left_to_the_parser() -> None:
    CAPPED.check(b'{"inputs": ["' + b"a" * 30_000)  # unterminated: pydantic refuses it
