"""Together AI chat completions (Llama and other open models) through ``together.AsyncTogether``.

The installed together 3.x SDK is Stainless-generated like openai's, with a working async client
(``AsyncTogether``), ``with_raw_response`` and the same exception classes.
"""

from __future__ import annotations

from types import ModuleType

from assay.llm.providers._base import ChatCompletionsProvider


class TogetherProvider(ChatCompletionsProvider):
    """``together.AsyncTogether`` with ``max_retries=0``; base_url is the API root (no /v1)."""

    name = "together"
    distribution = "together"
    client_class = "AsyncTogether"

    def _import_sdk(self) -> ModuleType:
        import together

        return together
