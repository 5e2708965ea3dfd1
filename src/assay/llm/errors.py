"""One exception hierarchy for every LLM provider.

Provider adapters translate their SDK's exceptions into these, so the retry loop, the circuit
breaker and the rate limiter never see SDK-specific types.
"""

from __future__ import annotations

from assay.errors import AssayError


class LLMError(AssayError):
    """Base class. ``reason`` is a short label used in metrics and the ratings table."""

    reason = "error"
    retryable = False


class RetryableError(LLMError):
    """Transient: worth retrying with backoff (and counting against the breaker)."""

    retryable = True


class RateLimitError(RetryableError):
    reason = "rate_limited"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerError(RetryableError):
    reason = "server_error"


class ProviderTimeoutError(RetryableError):
    reason = "timeout"


class ProviderConnectionError(RetryableError):
    reason = "connection"


class FatalError(LLMError):
    """Retrying cannot help: fail fast with the message."""


class AuthenticationError(FatalError):
    reason = "auth"
    exit_code = 2


class BadRequestError(FatalError):
    reason = "bad_request"


class ResponseParseError(LLMError):
    """The model answered, but not in the required schema (gets one repair retry)."""

    reason = "parse_error"


class CircuitOpenError(LLMError):
    """The endpoint's breaker is open; the call was not sent."""

    reason = "circuit_open"


class BudgetExceededError(LLMError):
    """Sending the call would exceed the run's budget."""

    reason = "budget_exceeded"
