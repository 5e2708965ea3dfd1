"""What the Stainless-generated SDKs (openai, anthropic, together) have in common.

All three raise ``APIStatusError`` (with ``status_code`` and ``response``), ``APITimeoutError``
and ``APIConnectionError``; this module maps them onto ``assay.llm.errors`` once, and reads the
rate-limit headers a response carries.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from types import ModuleType
from typing import Any

from assay.llm.errors import (
    AuthenticationError,
    BadRequestError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)

RATE_LIMIT_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "ratelimit-")
KEPT_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "request-id", "x-assay-simulated")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_FULL = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response headers the orchestration layer can act on, with lower-case names."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(RATE_LIMIT_HEADER_PREFIXES) or lower in KEPT_HEADERS:
            kept[lower] = value
    return kept


def parse_duration_s(value: str, now: float | None = None) -> float | None:
    """Seconds from a header value: "1.5", "250ms", "1m30s", an HTTP date or an RFC 3339 time.

    Returns ``None`` when the value is none of these. Times in the past give 0.
    """
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if _DURATION_FULL.match(text):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    current = time.time() if now is None else now
    try:
        return max(0.0, datetime.fromisoformat(text).timestamp() - current)
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(text).timestamp() - current)
    except (TypeError, ValueError):
        return None


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long the server asked us to wait, from the most precise header present.

    Order: ``retry-after-ms``, ``retry-after`` (seconds or HTTP date), then the reset headers
    (``x-ratelimit-reset``, ``x-ratelimit-reset-requests``, ``anthropic-ratelimit-requests-reset``).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    milliseconds = lower.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    for name in (
        "retry-after",
        "x-ratelimit-reset",
        "x-ratelimit-reset-requests",
        "anthropic-ratelimit-requests-reset",
    ):
        raw = lower.get(name)
        if raw is not None:
            parsed = parse_duration_s(raw, now)
            if parsed is not None:
                return parsed
    return None


def _status_message(provider: str, status: int, exc: Any) -> str:
    detail = getattr(exc, "message", "") or ""
    detail = " ".join(str(detail).split())[:300]
    return f"{provider} returned HTTP {status}" + (f": {detail}" if detail else "")


def translate_sdk_error(exc: Exception, sdk: ModuleType, provider: str) -> LLMError | None:
    """The ``assay.llm.errors`` exception for an SDK exception (returned, not raised).

    ``None`` for anything else (a bug should surface as itself, not as a retryable error).

    Messages never include the API key: auth failures get a fixed sentence naming the
    environment variable to check.
    """
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderTimeoutError(f"{provider} request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderConnectionError(f"could not connect to {provider}: {type(exc).__name__}")
    if isinstance(exc, sdk.APIStatusError):
        return _translate_status(exc, provider)
    if isinstance(exc, sdk.APIResponseValidationError | json.JSONDecodeError):
        return ServerError(f"{provider} sent a response body that is not valid JSON for its API")
    if isinstance(exc, sdk.APIError):
        return ServerError(f"{provider} call failed: {type(exc).__name__}")
    return None


def _translate_status(exc: Any, provider: str) -> LLMError:
    status = int(exc.status_code)
    headers = exc.response.headers if getattr(exc, "response", None) is not None else {}
    if status == 429:
        return RateLimitError(_status_message(provider, status, exc), retry_after_s(headers))
    if status in (401, 403):
        return AuthenticationError(
            f"{provider} rejected the API key (HTTP {status}): check that the key configured "
            "for this endpoint is valid and allowed to use the model."
        )
    if status == 408:
        return ProviderTimeoutError(_status_message(provider, status, exc))
    if status >= 500:
        return ServerError(_status_message(provider, status, exc))
    return BadRequestError(_status_message(provider, status, exc))


def elapsed_since(start: float) -> float:
    return time.perf_counter() - start
