"""OpenAI chat completions (GPT-4-class models) and any OpenAI-compatible endpoint via base_url."""

from __future__ import annotations

from types import ModuleType

from assay.llm.providers._base import ChatCompletionsProvider


class OpenAIProvider(ChatCompletionsProvider):
    """``openai.AsyncOpenAI`` with ``max_retries=0``; ``base_url`` selects a compatible server."""

    name = "openai"
    distribution = "openai"
    client_class = "AsyncOpenAI"

    def _import_sdk(self) -> ModuleType:
        import openai

        return openai
