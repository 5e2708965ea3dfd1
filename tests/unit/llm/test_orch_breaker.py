"""Circuit breaker transitions (fake clock), failover and round-robin in the router."""

from __future__ import annotations

import pytest
from _orch_fakes import FakeFactory, make_ensemble

from assay.llm.breaker import BreakerState, CircuitBreaker
from assay.llm.clock import FakeClock
from assay.llm.ensemble import endpoints_of
from assay.llm.errors import AuthenticationError, ServerError
from assay.llm.ratelimit import LimiterBank, LocalLimiter
from assay.llm.retry import AllEndpointsOpenError
from assay.llm.router import RaterRouter
from assay.llm.types import CompletionRequest
from assay.obs.metrics_llm import RecordingMetrics


def test_opens_after_threshold_then_half_open_probe_then_closes():
    clock = FakeClock()
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(failure_threshold=5, cooldown_s=30, clock=clock, on_change=seen.append)
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probe_reopens_for_another_cooldown():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == pytest.approx(10)


def test_success_resets_the_consecutive_count():
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def _router(factory: FakeFactory, urls: list[str], clock: FakeClock, metrics=None) -> RaterRouter:
    ensemble = make_ensemble({"r": urls})
    return RaterRouter(
        "r",
        endpoints_of(ensemble, "r"),
        LocalLimiter(LimiterBank(clock)),
        metrics=metrics or RecordingMetrics(),
        failure_threshold=2,
        cooldown_s=30,
        clock=clock,
        provider_factory=factory,
    )


REQUEST = CompletionRequest(model="m", prompt="p")


@pytest.mark.asyncio
async def test_round_robin_across_endpoints():
    clock, factory = FakeClock(), FakeFactory()
    router = _router(factory, ["http://one", "http://two"], clock)
    for _ in range(4):
        await router.attempt(REQUEST, 10)
    assert len(factory.get("http://one").requests) == 2
    assert len(factory.get("http://two").requests) == 2


@pytest.mark.asyncio
async def test_failover_when_an_endpoint_breaker_opens_and_probe_after_cooldown():
    clock, factory = FakeClock(), FakeFactory()
    metrics = RecordingMetrics()
    router = _router(factory, ["http://bad", "http://good"], clock, metrics)
    factory.get("http://bad").default = ServerError("down")
    failures = 0
    for _ in range(10):
        try:
            await router.attempt(REQUEST, 10)
        except ServerError:
            failures += 1
    assert failures == 2  # then the bad endpoint's breaker is open: all traffic fails over
    assert len(factory.get("http://good").requests) == 8
    assert ("breaker_state", ("r", "http://bad", 2)) in metrics.events
    clock.advance(31)
    factory.get("http://bad").default = factory.get("http://good").default
    for _ in range(4):
        await router.attempt(REQUEST, 10)
    assert len(factory.get("http://bad").requests) == 2 + 2  # probe succeeded: back in rotation
    assert ("breaker_state", ("r", "http://bad", 0)) in metrics.events


@pytest.mark.asyncio
async def test_all_endpoints_open_says_when_to_retry():
    clock, factory = FakeClock(), FakeFactory()
    router = _router(factory, ["http://x"], clock)
    factory.get("http://x").default = ServerError("down")
    for _ in range(2):
        with pytest.raises(ServerError):
            await router.attempt(REQUEST, 10)
    with pytest.raises(AllEndpointsOpenError) as info:
        await router.attempt(REQUEST, 10)
    assert info.value.retry_in_s == pytest.approx(30)


@pytest.mark.asyncio
async def test_fatal_errors_do_not_open_the_breaker():
    clock, factory = FakeClock(), FakeFactory()
    router = _router(factory, ["http://x"], clock)
    factory.get("http://x").default = AuthenticationError("bad key")
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            await router.attempt(REQUEST, 10)
    assert router.routes[0].breaker.state is BreakerState.CLOSED
