"""Shared adapter logic: time the call, keep rate-limit headers, translate SDK errors."""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

from assay.llm.errors import ServerError
from assay.llm.providers._sdk import rate_limit_headers, translate_sdk_error
from assay.llm.types import CompletionRequest, CompletionResponse


def sdk_timeout(sdk: ModuleType, timeout_s: float) -> Any:
    """The SDK's own ``Timeout`` (its httpx flavour): the whole budget, connecting within 10 s."""
    return sdk.Timeout(timeout_s, connect=min(timeout_s, 10.0))


class SDKProvider(ABC):
    """Base of the adapters. Subclasses build the client and map one request and response."""

    name: str = "sdk"

    def __init__(self, *, base_url: str | None, api_key: str, timeout_s: float) -> None:
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
    def _to_response(
        self, parsed: Any, request: CompletionRequest
    ) -> tuple[str, str, int, int, str]:
        """(text, model, input_tokens, output_tokens, finish_reason) from the parsed body."""

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
        text, model, tokens_in, tokens_out, finish = self._to_response(parsed, request)
        return CompletionResponse(
            text=text,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            latency_s=time.perf_counter() - start,
            finish_reason=finish,
            headers=rate_limit_headers(raw.headers),
        )

    async def aclose(self) -> None:
        await self.client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, timeout_s={self.timeout_s})"


def require(value: Any, what: str, provider: str) -> Any:
    """A field the provider must send; a missing one is a server-side fault."""
    if value is None:
        raise ServerError(f"{provider} response has no {what}")
    return value
