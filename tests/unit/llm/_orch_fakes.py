"""In-process fakes for the orchestration unit tests: a scripted Provider and an ensemble.

The fakes stand in for the SDK adapters only in unit tests (fake clock, no network); the
integration tests use the real SDKs against the simulated endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from assay.llm.ensemble import Endpoint, Ensemble
from assay.llm.types import CompletionRequest, CompletionResponse

GOOD = json.dumps({"score": 1.0, "biased": 1, "confidence": 0.8, "explanation": "Loaded words."})


class FakeProvider:
    """Implements the Provider protocol; answers from a script, then with ``default``."""

    def __init__(self, endpoint: str = "http://fake", script: list[Any] | None = None) -> None:
        self.name = "openai"
        self.endpoint = endpoint
        self.script = list(script or [])
        self.default: Any = GOOD
        self.requests: list[CompletionRequest] = []
        self.on_call: Callable[[CompletionRequest], Any] | None = None
        self.closed = False

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        item = self.script.pop(0) if self.script else self.default
        if self.on_call is not None:
            item = self.on_call(request) or item
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, CompletionResponse):
            return item
        return CompletionResponse(
            text=item, model=request.model, input_tokens=100, output_tokens=20, latency_s=0.01
        )

    async def aclose(self) -> None:
        self.closed = True


class FakeFactory:
    """Provider factory: one FakeProvider per base_url, created on first use."""

    def __init__(self) -> None:
        self.providers: dict[str, FakeProvider] = {}

    def get(self, base_url: str) -> FakeProvider:
        return self.providers.setdefault(base_url, FakeProvider(base_url))

    def __call__(self, endpoint: Endpoint, timeout_s: float) -> FakeProvider:
        return self.get(endpoint.base_url or "default")

    @property
    def calls(self) -> int:
        return sum(len(p.requests) for p in self.providers.values())


def make_ensemble(
    raters: dict[str, list[str]] | None = None, *, rpm: int = 6000, **resilience: Any
) -> Ensemble:
    """Raters named after their base URLs (one or more endpoints each)."""
    raters = raters or {"a": ["http://a"], "b": ["http://b"]}
    return Ensemble.model_validate(
        {
            "name": "test",
            "raters": {
                name: {
                    "provider": "openai",
                    "model": f"model-{name}",
                    "endpoints": [{"base_url": url} for url in urls],
                    "rpm": rpm,
                    "price_per_1k_input": 1.0,
                    "price_per_1k_output": 2.0,
                    "max_tokens": 50,
                }
                for name, urls in raters.items()
            },
            "resilience": {"backoff_initial_s": 0.1, **resilience},
        }
    )
