"""get_provider, key resolution and the header helpers shared by the SDK adapters."""

from __future__ import annotations

import email.utils
from types import SimpleNamespace

import pytest

from assay.errors import ConfigError
from assay.llm.errors import AuthenticationError, ServerError
from assay.llm.providers import Provider, get_provider, provider_kinds
from assay.llm.providers._base import Reply, chat_messages, from_chat_completion
from assay.llm.providers._sdk import parse_duration_s, rate_limit_headers, retry_after_s
from assay.llm.types import CompletionRequest


@pytest.mark.parametrize("kind", ["openai", "anthropic", "together", "openai-compatible"])
def test_get_provider_builds_each_adapter_without_retries(kind: str) -> None:
    provider = get_provider(kind, base_url="http://127.0.0.1:9/v1", api_key="k", timeout_s=3.5)
    assert isinstance(provider, Provider)
    assert provider.endpoint.startswith("http://127.0.0.1:9")
    client = provider.client  # type: ignore[attr-defined]
    assert client.max_retries == 0
    assert client.timeout.read == 3.5


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown LLM provider 'gemini'.*anthropic, openai, together"
    ):
        get_provider("gemini", base_url=None, api_key="k")
    assert provider_kinds() == ("openai", "anthropic", "together")


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key-123")
    provider = get_provider("anthropic", base_url=None, api_key=None)
    assert provider.client.api_key == "env-key-123"  # type: ignore[attr-defined]
    assert "env-key-123" not in repr(provider)


def test_missing_key_for_public_endpoint_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="TOGETHER_API_KEY"):
        get_provider("together", base_url=None, api_key=None)


def test_custom_endpoint_without_key_gets_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = get_provider("openai", base_url="http://127.0.0.1:9/v1", api_key=None)
    assert provider.client.api_key == "no-key"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({"x-ratelimit-reset-requests": "1m30s"}, 90.0),
        ({"x-ratelimit-reset-requests": "250ms"}, 0.25),
        ({"anthropic-ratelimit-requests-reset": "2030-01-01T00:00:10Z"}, 10.0),
        ({"retry-after": email.utils.formatdate(1_000_000_004, usegmt=True)}, 4.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float | None) -> None:
    now = 1_893_456_000.0 if "anthropic-ratelimit-requests-reset" in headers else 1_000_000_000.0
    assert retry_after_s(headers, now=now) == expected


def test_duration_in_the_past_is_zero() -> None:
    assert parse_duration_s("2000-01-01T00:00:00+00:00", now=1_000_000_000.0) == 0.0


def test_only_rate_limit_headers_are_kept() -> None:
    kept = rate_limit_headers(
        {
            "X-RateLimit-Remaining-Requests": "5",
            "anthropic-ratelimit-tokens-limit": "100",
            "Retry-After": "1",
            "set-cookie": "secret",
            "content-type": "application/json",
        }
    )
    assert kept == {
        "x-ratelimit-remaining-requests": "5",
        "anthropic-ratelimit-tokens-limit": "100",
        "retry-after": "1",
    }


def test_chat_completion_mapping_handles_text_choices_and_rejects_empty_ones() -> None:
    request = CompletionRequest(model="m", prompt="p")
    text_choice = SimpleNamespace(message=None, text="{}", finish_reason="eos")
    body = SimpleNamespace(choices=[text_choice], usage=None, model="served-m")
    assert from_chat_completion(body, request, "together") == Reply("{}", "served-m", 0, 0, "stop")
    with pytest.raises(ServerError, match="no choices"):
        from_chat_completion(SimpleNamespace(choices=[]), request, "openai")


def test_chat_messages_put_the_system_prompt_first() -> None:
    with_system = chat_messages(CompletionRequest(model="m", prompt="rate", system="rules"))
    assert with_system == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "rate"},
    ]
    assert chat_messages(CompletionRequest(model="m", prompt="rate")) == [
        {"role": "user", "content": "rate"}
    ]


def test_provider_key_goes_only_to_the_providers_own_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-openai-key")
    public = get_provider("openai", base_url="https://api.openai.com/v1/", api_key=None)
    assert public.client.api_key == "env-openai-key"  # type: ignore[attr-defined]
    custom = get_provider("openai", base_url="https://api.openai.com.evil/v1", api_key=None)
    assert custom.client.api_key == "no-key"  # type: ignore[attr-defined]
    explicit = get_provider("openai", base_url="http://127.0.0.1:9/v1", api_key="chosen")
    assert explicit.client.api_key == "chosen"  # type: ignore[attr-defined]
