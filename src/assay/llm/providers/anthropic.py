"""Anthropic messages API (Claude) through ``anthropic.AsyncAnthropic``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from assay.llm.errors import ServerError
from assay.llm.providers._base import Reply, SDKProvider, sdk_timeout, usage_tokens
from assay.llm.types import CompletionRequest

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicProvider(SDKProvider):
    """``anthropic.AsyncAnthropic`` with ``max_retries=0``; ``base_url`` for a proxy or the sim."""

    name = "anthropic"
    distribution = "anthropic"

    def _import_sdk(self) -> ModuleType:
        import anthropic

        return anthropic

    def _build_client(self, *, base_url: str | None, api_key: str, timeout_s: float) -> Any:
        return self.sdk.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=sdk_timeout(self.sdk, timeout_s),
        )

    async def _send(self, request: CompletionRequest, timeout: Any) -> Any:
        # The installed SDK (anthropic 2.x) has no temperature parameter on messages.create, so
        # request.temperature is not sent; it still separates cache entries upstream.
        extra: dict[str, Any] = {"system": request.system} if request.system else {}
        return await self.client.messages.with_raw_response.create(
            model=request.model,
            messages=[{"role": "user", "content": request.prompt}],
            max_tokens=request.max_tokens,
            timeout=timeout,
            **extra,
        )

    def _to_reply(self, parsed: Any, request: CompletionRequest) -> Reply:
        blocks = getattr(parsed, "content", None)
        if blocks is None:
            raise ServerError("anthropic response has no content")
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", "") == "text")
        tokens_in, tokens_out = usage_tokens(parsed, "input_tokens", "output_tokens")
        stop = str(getattr(parsed, "stop_reason", None) or "end_turn")
        model = str(getattr(parsed, "model", None) or request.model)
        return Reply(text, model, tokens_in, tokens_out, _FINISH.get(stop, stop))
