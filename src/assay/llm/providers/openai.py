"""OpenAI chat completions (GPT-4-class models) and any OpenAI-compatible endpoint via base_url."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from assay.llm.providers._base import SDKProvider, require
from assay.llm.types import CompletionRequest


def chat_messages(request: CompletionRequest) -> list[dict[str, str]]:
    """The OpenAI-format message list: an optional system message, then the user prompt."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    return messages


def from_chat_completion(
    parsed: Any, request: CompletionRequest, provider: str
) -> tuple[str, str, int, int, str]:
    """Text, model, tokens and finish reason of an OpenAI-format chat completion."""
    choices = require(getattr(parsed, "choices", None), "choices", provider)
    if not choices:
        require(None, "choices", provider)
    choice = choices[0]
    text = choice.message.content or ""
    usage = getattr(parsed, "usage", None)
    tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
    tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
    finish = str(getattr(choice, "finish_reason", None) or "stop")
    return text, str(getattr(parsed, "model", None) or request.model), tokens_in, tokens_out, finish


class OpenAIProvider(SDKProvider):
    """``openai.AsyncOpenAI`` with ``max_retries=0``; ``base_url`` selects a compatible server."""

    name = "openai"

    def _import_sdk(self) -> ModuleType:
        import openai

        return openai

    def _build_client(self, *, base_url: str | None, api_key: str, timeout_s: float) -> Any:
        from assay.llm.providers._base import sdk_timeout

        return self.sdk.AsyncOpenAI(
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
        return from_chat_completion(parsed, request, self.name)
