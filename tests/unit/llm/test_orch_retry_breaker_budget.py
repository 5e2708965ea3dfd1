"""Waits behind open circuit breakers do not use up a call's attempts: how many requests a call
may send must not depend on whether other calls happened to open the breaker before it (arrival
order, concurrency). Those waits have their own budget, so a call behind breakers that never
close still ends."""

from __future__ import annotations

import pytest

from assay.llm.clock import FakeClock
from assay.llm.errors import ServerError
from assay.llm.retry import AllEndpointsOpenError, RetryPolicy, call_with_retries


class Script:
    """Raises the scripted outcomes in order, then answers "ok"; counts what was sent."""

    def __init__(self, outcomes: list[BaseException]) -> None:
        self.outcomes = list(outcomes)
        self.sent = 0

    async def __call__(self) -> str:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if not isinstance(outcome, AllEndpointsOpenError):
            self.sent += 1
        if outcome is not None:
            raise outcome
        return "ok"


def blocked() -> AllEndpointsOpenError:
    return AllEndpointsOpenError("every endpoint's circuit breaker is open", retry_in_s=0.5)


@pytest.mark.asyncio
async def test_blocked_waits_do_not_use_up_sent_attempts():
    # 2 failures, 2 waits behind the breaker, 1 more failure, then an answer on request 4 of 4
    script = Script(
        [ServerError("500"), ServerError("500"), blocked(), blocked(), ServerError("500")]
    )
    result = await call_with_retries(script, RetryPolicy(max_attempts=4), clock=FakeClock())
    assert result == "ok" and script.sent == 4


@pytest.mark.asyncio
async def test_sent_attempts_still_stop_at_max_attempts():
    script = Script([blocked(), *[ServerError("500")] * 10])
    with pytest.raises(ServerError):
        await call_with_retries(script, RetryPolicy(max_attempts=3), clock=FakeClock())
    assert script.sent == 3


@pytest.mark.asyncio
async def test_a_call_behind_breakers_that_never_close_ends():
    clock = FakeClock()
    script = Script([blocked() for _ in range(50)])
    with pytest.raises(AllEndpointsOpenError):
        await call_with_retries(script, RetryPolicy(max_attempts=3), clock=clock)
    assert script.sent == 0 and len(script.outcomes) == 47
    assert clock.slept and min(clock.slept) >= 0.5  # each wait lasts the cool-down at least
