"""Retry policy: backoff with jitter for retryable errors only; Retry-After pauses the bucket."""

from __future__ import annotations

import pytest
from _orch_fakes import FakeFactory, make_ensemble

from assay.llm.clock import FakeClock
from assay.llm.ensemble import endpoints_of
from assay.llm.errors import (
    AuthenticationError,
    BadRequestError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from assay.llm.ratelimit import LimiterBank, LocalLimiter
from assay.llm.retry import RetryPolicy, call_with_retries
from assay.llm.router import RaterRouter
from assay.llm.types import CompletionRequest
from assay.obs.metrics_llm import RecordingMetrics


class Flaky:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.asyncio
async def test_retries_retryable_errors_with_growing_backoff():
    clock = FakeClock()
    flaky = Flaky([ServerError("a"), ProviderTimeoutError("b"), ServerError("c")])
    retried: list[BaseException] = []
    policy = RetryPolicy(max_attempts=5, initial_s=1.0, max_s=60.0, jitter_s=0.5)
    assert await call_with_retries(flaky, policy, clock=clock, on_retry=retried.append) == "ok"
    assert flaky.calls == 4 and len(retried) == 3
    waits = [s for s in clock.slept if s > 0]
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        assert 2**attempt <= wait <= 2**attempt + 0.5  # exponential + jitter


@pytest.mark.asyncio
@pytest.mark.parametrize("fatal", [AuthenticationError("bad key"), BadRequestError("bad")])
async def test_fatal_errors_fail_fast(fatal):
    flaky = Flaky([fatal])
    with pytest.raises(type(fatal)):
        await call_with_retries(flaky, RetryPolicy(), clock=FakeClock())
    assert flaky.calls == 1


@pytest.mark.asyncio
async def test_gives_up_after_max_attempts_with_the_last_error():
    flaky = Flaky([ServerError(str(i)) for i in range(10)])
    with pytest.raises(ServerError, match="2"):
        await call_with_retries(flaky, RetryPolicy(max_attempts=3), clock=FakeClock())
    assert flaky.calls == 3


@pytest.mark.asyncio
async def test_retry_after_pauses_the_endpoint_for_every_caller():
    clock, factory = FakeClock(), FakeFactory()
    ensemble = make_ensemble({"r": ["http://x"]}, rpm=6000)
    bank = LimiterBank(clock)
    router = RaterRouter(
        "r",
        endpoints_of(ensemble, "r"),
        LocalLimiter(bank),
        metrics=RecordingMetrics(),
        clock=clock,
        provider_factory=factory,
    )
    provider = factory.get("http://x")
    sent_at: list[float] = []
    provider.on_call = lambda request: sent_at.append(clock.now())
    provider.script = [RateLimitError("slow down", retry_after_s=7.0)]
    request = CompletionRequest(model="m", prompt="p")
    with pytest.raises(RateLimitError):
        await router.attempt(request, 10)
    await router.attempt(request, 10)  # a different caller, no backoff of its own
    assert sent_at[1] - sent_at[0] >= 7.0
    assert router.routes[0].breaker.state == 0  # 429 is not a breaker failure
