"""Together AI chat completions (Llama and other open models) through ``together.AsyncTogether``.

The installed together 3.x SDK is Stainless-generated like openai's, with a working async client
(``AsyncTogether``), ``with_raw_response`` and the same exception classes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from assay.llm.providers._base import SDKProvider, require, sdk_timeout
from assay.llm.providers.openai import chat_messages
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

    def _to_response(
        self, parsed: Any, request: CompletionRequest
    ) -> tuple[str, str, int, int, str]:
        choices = require(getattr(parsed, "choices", None), "choices", self.name)
        if not choices:
            require(None, "choices", self.name)
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = (getattr(message, "content", None) if message else None) or choice.text or ""
        usage = getattr(parsed, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        finish = str(getattr(choice, "finish_reason", None) or "stop")
        finish = "stop" if finish == "eos" else finish
        return (
            text,
            str(getattr(parsed, "model", None) or request.model),
            tokens_in,
            tokens_out,
            finish,
        )
