"""The rating prompt and the strict parser of its answers (DESIGN.md bias scale)."""

from __future__ import annotations

import json
import sys

import pytest

from assay.bias.prompt import (
    PROMPT_VERSION,
    Rating,
    build_messages,
    extract_passage,
    parse_rating,
    repair_prompt,
)
from assay.llm.errors import ResponseParseError

VALID = {"score": -1.5, "biased": 1, "confidence": 0.8, "explanation": "Loaded wording."}


def answer(**changes: object) -> str:
    return json.dumps({**VALID, **changes})


def test_valid_answer_parses_to_rating() -> None:
    assert parse_rating(answer()) == Rating(-1.5, 1, 0.8, "Loaded wording.")


def test_surrounding_whitespace_and_integer_numbers_are_accepted() -> None:
    rating = parse_rating("\n  " + answer(score=2, confidence=1) + "\n")
    assert (rating.score, rating.confidence) == (2.0, 1.0)
    assert isinstance(rating.score, float)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Sure! " + answer(), "does not start with a JSON object"),
        (answer() + " Hope this helps.", "extra text after"),
        ("```json\n" + answer() + "\n```", "does not start with a JSON object"),
        ('{"score": -1.5, "biased": 1', "invalid JSON"),
        ("[1, 2]", "does not start with a JSON object"),
        ('{"score": NaN, "biased": 0, "confidence": 0.5, "explanation": "x"}', "NaN"),
        (
            '{"score": 1, "score": 2, "biased": 0, "confidence": 0.5, "explanation": "x"}',
            "more than once",
        ),
    ],
)
def test_malformed_answers_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ResponseParseError, match=reason):
        parse_rating(text)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"score": 2.01}, r"score 2.01 is outside \[-2, 2\]"),
        ({"score": -3}, "score -3 is outside"),
        ({"confidence": 1.2}, "confidence 1.2 is outside"),
        ({"confidence": -0.1}, "confidence -0.1 is outside"),
        ({"biased": 2}, "biased must be the integer 0 or 1"),
        ({"biased": True}, "biased must be the integer 0 or 1"),
        ({"biased": 1.0}, "biased must be the integer 0 or 1"),
        ({"score": "1"}, "score must be a number"),
        ({"score": None}, "score must be a number"),
        ({"explanation": ""}, "explanation must be a non-empty string"),
        ({"explanation": 5}, "explanation must be a non-empty string"),
        ({"explanation": "x" * 601}, "longer than 600"),
        ({"extra": 1}, "unexpected field"),
    ],
)
def test_out_of_range_and_wrong_types_are_never_coerced(changes: dict, reason: str) -> None:
    with pytest.raises(ResponseParseError, match=reason):
        parse_rating(answer(**changes))


def test_missing_fields_are_named() -> None:
    text = json.dumps({"score": 0, "biased": 0})
    with pytest.raises(ResponseParseError, match=r"missing field.*confidence, explanation"):
        parse_rating(text)


def test_messages_carry_scale_schema_and_passage() -> None:
    system, user = build_messages("The council raised taxes.")
    assert "-2" in system and "+2" in system and '"score"' in system and '"biased"' in system
    assert "The council raised taxes." in user
    assert extract_passage(user) == "The council raised taxes."
    assert PROMPT_VERSION


def test_repair_prompt_names_the_problem_and_repeats_the_passage() -> None:
    prompt = repair_prompt("Passage text.", "Sure! {...}", "there is extra text")
    assert "there is extra text" in prompt and "Sure! {...}" in prompt
    assert extract_passage(prompt) == "Passage text."
    with pytest.raises(ResponseParseError) as caught:
        parse_rating("Sure! {}")
    from_error = repair_prompt("P.", "Sure! {}", str(caught.value))
    assert "could not be used: the answer does not start with a JSON object" in from_error
    long_prompt = repair_prompt("P.", "x" * 2000, "invalid JSON")
    assert "[truncated]" in long_prompt and len(long_prompt) < 1500


@pytest.mark.parametrize("recursion_limit", [1_000, 100_000])
def test_deep_nesting_is_refused_whatever_the_recursion_limit(recursion_limit: int) -> None:
    """PyTensor raises the interpreter's recursion limit; then json would parse 1,200 levels and
    the answer would fail for another reason. The depth check makes the verdict the same."""
    deep = '{"score": ' + "[" * 1200 + "]" * 1200 + ', "biased": 0, "confidence": 0.5}'
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit)
    try:
        with pytest.raises(ResponseParseError, match="nested too deeply"):
            parse_rating(deep)
    finally:
        sys.setrecursionlimit(previous)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    answer = '{"score": 1, "biased": 1, "confidence": 0.9, "explanation": "[[[[[[[[[{{{{ \\" ["}'
    assert parse_rating(answer).explanation.startswith("[[[[")
