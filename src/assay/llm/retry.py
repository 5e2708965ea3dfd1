"""Retries with exponential backoff and jitter (tenacity), only for retryable errors.

``RetryableError`` (429, 5xx, timeouts, connection errors) and "every endpoint's breaker is
open" are retried; anything else — auth errors, bad requests — propagates at once.

``max_attempts`` counts attempts that were sent. A wait behind open breakers
(``AllEndpointsOpenError``: nothing was sent) does not use one up; those waits have their own
budget of ``max_attempts``, so a call that never gets past the breakers still ends. This keeps a
call's outcome a function of the answers to the requests it sent: whether a breaker happened to
be open depends on what other calls did before (arrival order, concurrency), and must not decide
how many requests this call may send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from assay.llm.clock import Clock, MonotonicClock
from assay.llm.errors import CircuitOpenError, RetryableError

T = TypeVar("T")


class AllEndpointsOpenError(CircuitOpenError):
    """Every endpoint of a rater has an open breaker; ``retry_in_s`` says when one may probe."""

    def __init__(self, message: str, retry_in_s: float) -> None:
        super().__init__(message)
        self.retry_in_s = retry_in_s


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_s: float = 0.25
    max_s: float = 10.0
    jitter_s: float = 0.25


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableError | AllEndpointsOpenError)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(
        initial=policy.initial_s, max=policy.max_s, jitter=policy.jitter_s
    )

    def wait(state: RetryCallState) -> float:
        seconds = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AllEndpointsOpenError):
            seconds = max(seconds, exc.retry_in_s)
        return float(seconds)

    return wait


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    clock: Clock | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, raises a non-retryable error, or attempts run out
    (then the last retryable error is raised): ``max_attempts`` sent attempts, or as many
    waits behind open breakers, whichever comes first."""
    clock = clock or MonotonicClock()

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc)

    tried = {"sent": 0, "blocked": 0}

    def stop(state: RetryCallState) -> bool:
        return max(tried.values()) >= policy.max_attempts

    retrying = AsyncRetrying(
        stop=stop,
        wait=_wait(policy),
        retry=retry_if_exception(is_retryable),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )

    async def run() -> T:  # a real coroutine function: tenacity awaits it per attempt
        try:
            return await attempt()
        except AllEndpointsOpenError:
            tried["blocked"] += 1
            raise
        except BaseException:
            tried["sent"] += 1
            raise

    return await retrying(run)
