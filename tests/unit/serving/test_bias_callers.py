"""The caller key file: what it accepts, what it refuses (one sentence naming the problem), and
who a presented key belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.serving.bias_callers import (
    ANONYMOUS,
    AnonymousAccess,
    CallerForbidden,
    CallerUnauthenticated,
    read_caller_keys,
)

GOOD = "k" * 24


def key_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "callers.yaml"
    path.write_text(text)
    return str(path)


def test_keys_map_to_callers_with_their_own_limits(tmp_path: Path) -> None:
    text = f"""
callers:
  newsroom: {{keys: ["{GOOD}"], revoked_keys: ["{"r" * 24}"], daily_budget_usd: 2.5}}
  lab: {{keys: ["{"l" * 30}"], max_queued_passages: 8}}
"""
    keys = read_caller_keys(key_file(tmp_path, text))
    newsroom = keys.authenticate({"authorization": f"Bearer {GOOD}"})
    assert (newsroom.id, newsroom.daily_budget_usd, newsroom.max_queued_passages) == (
        "newsroom",
        2.5,
        None,
    )
    lab = keys.authenticate({"x-api-key": "l" * 30})
    assert (lab.id, lab.max_queued_passages) == ("lab", 8)
    assert keys.authenticate({"authorization": f"bearer  {GOOD} "}).id == "newsroom"
    with pytest.raises(CallerForbidden, match="revoked"):
        keys.authenticate({"authorization": f"Bearer {'r' * 24}"})
    with pytest.raises(CallerUnauthenticated, match="unknown API key"):
        keys.authenticate({"authorization": f"Bearer {GOOD}x"})
    for headers in ({}, {"authorization": f"Basic {GOOD}"}, {"authorization": "Bearer "}):
        with pytest.raises(CallerUnauthenticated, match="needs an API key"):
            keys.authenticate(headers)


def test_without_a_file_the_scorer_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match=r"needs to know its callers.*--allow-anonymous"):
        read_caller_keys(None)


def test_allowed_anonymous_callers_have_their_own_small_quota() -> None:
    keys = read_caller_keys(None, AnonymousAccess(True, 0.5, 4))
    caller = keys.authenticate({})
    assert not keys.required
    assert (caller.id, caller.daily_budget_usd, caller.max_queued_passages) == (ANONYMOUS, 0.5, 4)


def test_anonymous_access_and_a_key_file_exclude_each_other(tmp_path: Path) -> None:
    path = key_file(tmp_path, f'callers: {{newsroom: {{keys: ["{GOOD}"]}}}}')
    with pytest.raises(ConfigError, match="exclude each other"):
        read_caller_keys(path, AnonymousAccess(allowed=True))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("callers: {}", "non-empty 'callers'"),
        ("[1, 2]", "non-empty 'callers'"),
        ('callers: {Bad_Id: {keys: ["' + GOOD + '"]}}', "lower-case"),
        ('callers: {anonymous: {keys: ["' + GOOD + '"]}}', "lower-case"),
        ('callers: {a: {keys: ["short"]}}', "at least 24"),
        ('callers: {a: {keys: ["' + GOOD + '"]}, b: {keys: ["' + GOOD + '"]}}', "twice"),
        ('callers: {a: {revoked_keys: ["' + GOOD + '"]}}', "no active key"),
        ('callers: {a: {keys: ["' + GOOD + '"], daily_budget_usd: -1}}', "at least 0"),
        ('callers: {a: {keys: ["' + GOOD + '"], daily_budget_usd: "5"}}', "number of USD"),
        ('callers: {a: {keys: ["' + GOOD + '"], max_queued_passages: 0}}', "at least 1"),
        ('callers: {a: {keys: ["' + GOOD + '"], quota: 1}}', "unknown fields"),
        ('callers: {a: {keys: "' + GOOD + '"}}', "list of strings"),
    ],
)
def test_a_bad_key_file_stops_the_start_with_one_sentence(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        read_caller_keys(key_file(tmp_path, text))


def test_a_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        read_caller_keys(str(tmp_path / "absent.yaml"))
