"""Together AI chat completions (Llama and other open models) through ``together.AsyncTogether``.

The installed together 3.x SDK is Stainless-generated like openai's, with a working async client
(``AsyncTogether``), ``with_raw_response`` and the same exception classes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from assay.llm.providers._base import (
    Reply,
    SDKProvider,
    chat_messages,
    from_chat_completion,
    sdk_timeout,
)
from assay.llm.types import CompletionRequest


class TogetherProvider(SDKProvider):
    """``together.AsyncTogether`` with ``max_retries=0``; base_url is the API root (no /v1)."""

    name = "together"

    def _import_sdk(self) -> ModuleType:
        import together

        return together

    def _build_client(self, *, base_url: str | None, api_key: str, timeout_s: float) -> Any:
        return self.sdk.AsyncTogether(
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
