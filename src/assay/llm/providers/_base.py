"""Shared adapter logic: time the call, keep rate-limit headers, translate SDK errors."""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from assay.llm.errors import ServerError
from assay.llm.providers._sdk import rate_limit_headers, translate_sdk_error
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.tested_versions import require_tested


def sdk_timeout(sdk: ModuleType, timeout_s: float) -> Any:
    """The SDK's own ``Timeout`` (its httpx flavour): the whole budget, connecting within 10 s."""
    return sdk.Timeout(timeout_s, connect=min(timeout_s, 10.0))


@dataclass(frozen=True)
class Reply:
    """The parts of a parsed SDK response that become a ``CompletionResponse``."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str


class SDKProvider(ABC):
    """Base of the adapters. Subclasses build the client and map one request and response."""

    name: str = "sdk"
    distribution: str
    """The SDK's distribution, checked against its tested range before the import."""

    def __init__(self, *, base_url: str | None, api_key: str, timeout_s: float) -> None:
        require_tested(self.distribution)
        self.sdk = self._import_sdk()
        self.timeout_s = timeout_s
        self.client = self._build_client(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
        self.endpoint = str(self.client.base_url).rstrip("/")

    @abstractmethod
    def _import_sdk(self) -> ModuleType: ...

    @abstractmethod
    def _build_client(self, *, base_url: str | None, api_key: str, timeout_s: float) -> Any: ...

    @abstractmethod
    async def _send(self, request: CompletionRequest, timeout: Any) -> Any:
        """Send the request through ``with_raw_response``; return the raw SDK response."""

    @abstractmethod
    def _to_reply(self, parsed: Any, request: CompletionRequest) -> Reply:
        """The reply in the parsed body; ``ServerError`` when a required part is missing."""

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        timeout = sdk_timeout(self.sdk, min(request.timeout_s, self.timeout_s))
        start = time.perf_counter()
        try:
            raw = await self._send(request, timeout)
            parsed = raw.parse()
            if inspect.isawaitable(parsed):
                parsed = await parsed
        except Exception as exc:
            translated = translate_sdk_error(exc, self.sdk, self.name)
            if translated is None:
                raise
            raise translated from exc
        reply = self._to_reply(parsed, request)
        return CompletionResponse(
            text=reply.text,
            model=reply.model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            latency_s=time.perf_counter() - start,
            finish_reason=reply.finish_reason,
            headers=rate_limit_headers(raw.headers),
        )

    async def aclose(self) -> None:
        await self.client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, timeout_s={self.timeout_s})"


def chat_messages(request: CompletionRequest) -> list[dict[str, str]]:
    """The OpenAI-format message list: an optional system message, then the user prompt."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    return messages


def usage_tokens(parsed: Any, input_name: str, output_name: str) -> tuple[int, int]:
    """(input, output) token counts from the body's ``usage`` (0 when it is absent)."""
    usage = getattr(parsed, "usage", None)
    return (
        int(getattr(usage, input_name, 0) or 0),
        int(getattr(usage, output_name, 0) or 0),
    )


def from_chat_completion(parsed: Any, request: CompletionRequest, provider: str) -> Reply:
    """The reply in an OpenAI-format chat completion (OpenAI, Together, compatible servers)."""
    choices = getattr(parsed, "choices", None)
    if not choices:
        raise ServerError(f"{provider} response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) if message is not None else None
    if text is None:
        text = getattr(choice, "text", None) or ""
    tokens_in, tokens_out = usage_tokens(parsed, "prompt_tokens", "completion_tokens")
    finish = str(getattr(choice, "finish_reason", None) or "stop")
    model = str(getattr(parsed, "model", None) or request.model)
    return Reply(text, model, tokens_in, tokens_out, "stop" if finish == "eos" else finish)


class ChatCompletionsProvider(SDKProvider):
    """An OpenAI-wire-format SDK (OpenAI, Together): ``client_class`` names its async client."""

    client_class: str = "AsyncOpenAI"

    def _build_client(self, *, base_url: str | None, api_key: str, timeout_s: float) -> Any:
        return getattr(self.sdk, self.client_class)(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=sdk_timeout(self.sdk, timeout_s),
        )

    async def _send(self, request: CompletionRequest, timeout: Any) -> Any:
        return await self.client.chat.completions.with_raw_response.create(
            model=request.model,
            messages=chat_messages(request),
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            timeout=timeout,
        )

    def _to_reply(self, parsed: Any, request: CompletionRequest) -> Reply:
        return from_chat_completion(parsed, request, self.name)
