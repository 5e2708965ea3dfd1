"""The Provider protocol and ``get_provider``: one small interface over the LLM SDKs.

Adapters live in sibling modules (``openai``, ``anthropic``, ``together``); each imports its SDK
only when an adapter is built, so ``import assay.llm.providers`` never imports an SDK.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from assay.errors import ConfigError
from assay.llm.errors import AuthenticationError
from assay.llm.providers._base import SDKProvider
from assay.llm.providers.anthropic import AnthropicProvider
from assay.llm.providers.openai import OpenAIProvider
from assay.llm.providers.together import TogetherProvider
from assay.llm.types import CompletionRequest, CompletionResponse


@runtime_checkable
class Provider(Protocol):
    """An async chat-completion client for one endpoint.

    ``complete`` raises only ``assay.llm.errors`` exceptions; SDK exceptions never escape.
    """

    name: str
    endpoint: str

    async def complete(self, request: CompletionRequest) -> CompletionResponse: ...

    async def aclose(self) -> None: ...


_ADAPTERS: dict[str, type[SDKProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "together": TogetherProvider,
}
_ALIASES = {"openai-compatible": "openai", "openai_compatible": "openai", "claude": "anthropic"}

API_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "together": "TOGETHER_API_KEY",
}
"""Environment variable each provider kind reads its key from when none is passed."""

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "together": "https://api.together.xyz/v1",
}
"""Each provider's own API root: the only place its default key variable is sent."""

NO_KEY_PLACEHOLDER = "no-key"
"""Sent to a custom ``base_url`` when no key is configured (local servers that ignore keys)."""


def provider_kinds() -> tuple[str, ...]:
    """The provider kinds ``get_provider`` accepts (aliases excluded)."""
    return tuple(_ADAPTERS)


def is_default_base_url(kind: str, base_url: str | None) -> bool:
    """Whether ``base_url`` is the provider's own API (``None`` or its public root)."""
    if base_url is None:
        return True
    default = DEFAULT_BASE_URLS.get(kind)
    return default is not None and base_url.rstrip("/") == default


def resolve_api_key(kind: str, api_key: str | None, base_url: str | None) -> str:
    """The key to use: the argument, else - for the provider's own API only - its variable.

    The provider's default key variable (``OPENAI_API_KEY`` ...) is never sent to a custom
    ``base_url``: such an endpoint needs an explicit ``api_key_env``, and without one gets a
    placeholder (local OpenAI-compatible servers and the simulated endpoint accept any key).
    The public endpoints need a real key, so its absence is an error naming the variable.
    """
    if api_key:
        return api_key
    if not is_default_base_url(kind, base_url):
        return NO_KEY_PLACEHOLDER
    env_name = API_KEY_ENV.get(kind, "")
    from_env = os.environ.get(env_name) if env_name else None
    if from_env:
        return from_env
    raise AuthenticationError(
        f"No API key for the {kind} provider: set {env_name} in the environment "
        "or configure a key for this endpoint."
    )


def get_provider(
    kind: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 30.0,
) -> Provider:
    """Build the adapter for ``kind`` ("openai", "anthropic" or "together").

    ``base_url`` points the SDK at another endpoint (an OpenAI-compatible server, the simulated
    endpoint); ``None`` means the provider's public API. The SDK client is built with
    ``max_retries=0`` and a ``timeout_s`` timeout, so assay's retry loop is the only one.
    """
    canonical = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if canonical not in _ADAPTERS:
        known = ", ".join(sorted(_ADAPTERS))
        raise ConfigError(f"Unknown LLM provider {kind!r}; choose one of: {known}.")
    if timeout_s <= 0:
        raise ConfigError(f"The provider timeout must be positive, got {timeout_s}.")
    key = resolve_api_key(canonical, api_key, base_url)
    provider: Provider = _ADAPTERS[canonical](base_url=base_url, api_key=key, timeout_s=timeout_s)
    return provider


__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URLS",
    "Provider",
    "get_provider",
    "provider_kinds",
    "resolve_api_key",
]
