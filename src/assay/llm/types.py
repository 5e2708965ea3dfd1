"""Value types that cross the Provider boundary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CompletionRequest:
    """One chat completion: a system message, one user message and sampling settings."""

    model: str
    prompt: str
    system: str = ""
    temperature: float = 0.0
    max_tokens: int = 256
    timeout_s: float = 30.0


@dataclass(frozen=True)
class CompletionResponse:
    """What a provider answered, with usage and timing."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
