"""One attempt of one rater's call: pick an endpoint, wait for its limiter, call, account.

Endpoints of a rater are used round-robin; an endpoint whose circuit breaker is open is skipped
(failover). Rate limiting responses pause that endpoint's bucket for Retry-After; other
retryable failures count against its breaker. Retrying is the caller's job (``retry.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assay.llm.breaker import BreakerState, CircuitBreaker
from assay.llm.clock import Clock, MonotonicClock
from assay.llm.ensemble import Endpoint
from assay.llm.errors import (
    LLMError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
    ServerError,
)
from assay.llm.providers import get_provider
from assay.llm.ratelimit import Limiter, pause_from_headers
from assay.llm.retry import AllEndpointsOpenError
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.obs.metrics_llm import LLMMetrics

DEFAULT_429_PAUSE_S = 1.0
TIMEOUT_GRACE_S = 1.0

ProviderFactory = Callable[[Endpoint, float], Any]


def sdk_provider(endpoint: Endpoint, timeout_s: float) -> Any:
    """Build the SDK adapter for an endpoint; the key is read from this process's env."""
    return get_provider(
        endpoint.provider,
        base_url=endpoint.base_url,
        api_key=endpoint.api_key(),
        timeout_s=timeout_s,
    )


@dataclass
class Route:
    endpoint: Endpoint
    breaker: CircuitBreaker
    provider: Any = None


class RaterRouter:
    """The endpoints of one rater, each with its breaker; ``attempt`` sends one call."""

    def __init__(
        self,
        rater: str,
        endpoints: Sequence[Endpoint],
        limiter: Limiter,
        *,
        metrics: LLMMetrics,
        timeout_s: float = 30.0,
        failure_threshold: int = 5,
        cooldown_s: float = 15.0,
        max_pause_s: float = 60.0,
        clock: Clock | None = None,
        provider_factory: ProviderFactory = sdk_provider,
    ) -> None:
        self.rater = rater
        self.limiter = limiter
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.max_pause_s = max_pause_s
        self.clock = clock or MonotonicClock()
        self.provider_factory = provider_factory
        self.routes = [
            Route(ep, self._breaker(ep, failure_threshold, cooldown_s)) for ep in endpoints
        ]
        self._next = itertools.cycle(range(len(self.routes)))

    def _breaker(self, ep: Endpoint, threshold: int, cooldown_s: float) -> CircuitBreaker:
        def report(state: BreakerState) -> None:
            self.metrics.breaker_state(self.rater, ep.label, int(state))

        return CircuitBreaker(threshold, cooldown_s, clock=self.clock, on_change=report)

    def pick(self) -> Route:
        """The next endpoint in round-robin order whose breaker lets a call through."""
        start = next(self._next)
        for offset in range(len(self.routes)):
            route = self.routes[(start + offset) % len(self.routes)]
            if route.breaker.allow():
                return route
        wait = min(r.breaker.retry_in() for r in self.routes)
        raise AllEndpointsOpenError(
            f"rater {self.rater!r}: every endpoint's circuit breaker is open", retry_in_s=wait
        )

    def warm(self, on_error: Callable[[Endpoint, Exception], None] | None = None) -> None:
        """Create the SDK clients of every endpoint ahead of the first call (importing an SDK
        takes seconds). A client that cannot be built raises, or with ``on_error`` is reported
        there and left for the first call to build (and fail) again."""
        for route in self.routes:
            if route.provider is None:
                try:
                    route.provider = self.provider_factory(route.endpoint, self.timeout_s)
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(route.endpoint, exc)

    async def attempt(
        self, request: CompletionRequest, est_tokens: int, priority: int = 0
    ) -> CompletionResponse:
        """Send one call; ``priority`` (the retry number) moves it up the limiter's queue."""
        route = self.pick()
        ep = route.endpoint
        try:
            if route.provider is None:  # before the slot: building a client can take seconds
                route.provider = self.provider_factory(ep, self.timeout_s)
            waited = await self.limiter.acquire(ep.key, ep.rpm, ep.tpm, est_tokens, priority)
            self.metrics.ratelimit_wait(self.rater, ep.label, waited)
            response = await self._send(route.provider, request)
        except RateLimitError as exc:
            route.breaker.release()
            pause = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_429_PAUSE_S
            await self.limiter.pause(ep.key, min(pause, self.max_pause_s))
            self._count_error(ep, exc)
            raise
        except RetryableError as exc:
            route.breaker.record_failure()
            self._count_error(ep, exc)
            raise
        except LLMError as exc:
            route.breaker.release()
            self._count_error(ep, exc)
            raise
        except BaseException:
            route.breaker.release()
            raise
        route.breaker.record_success()
        await self._after_success(ep, response, est_tokens)
        return response

    async def _send(self, provider: Any, request: CompletionRequest) -> CompletionResponse:
        try:
            response: CompletionResponse = await asyncio.wait_for(
                provider.complete(request), timeout=request.timeout_s + TIMEOUT_GRACE_S
            )
        except TimeoutError:
            raise ProviderTimeoutError(
                f"rater {self.rater!r}: no answer within {request.timeout_s:g} s"
            ) from None
        except LLMError:
            raise
        except Exception as exc:  # an adapter let an unexpected error through: treat as 5xx
            raise ServerError(f"rater {self.rater!r}: {type(exc).__name__}: {exc}") from exc
        return response

    async def _after_success(
        self, ep: Endpoint, response: CompletionResponse, est_tokens: int
    ) -> None:
        self.metrics.call(self.rater, ep.label, "success")
        self.metrics.latency(self.rater, ep.label, response.latency_s)
        if ep.tpm:
            await self.limiter.adjust_tokens(ep.key, response.total_tokens - est_tokens)
        pause = pause_from_headers(response.headers) if response.headers else None
        if pause:
            await self.limiter.pause(ep.key, min(pause, self.max_pause_s))

    def _count_error(self, ep: Endpoint, exc: LLMError) -> None:
        exc.endpoint_label = ep.label  # type: ignore[attr-defined]  # read by the retry counter
        self.metrics.call(self.rater, ep.label, "error")
        self.metrics.error(self.rater, ep.label, exc.reason)

    async def aclose(self) -> None:
        for route in self.routes:
            if route.provider is not None:
                await route.provider.aclose()
                route.provider = None
