"""The Redis-shared limiter and budget (Lua scripts) against a real redis-server on 127.0.0.1.

Several ``RedisLimiter``/``RedisBudget`` objects with their own clients stand for several
processes; many asyncio tasks hit them at once. Time is a ``FakeClock`` passed to the scripts
(``server_clock=False``), so the limiter tests are exact and take no wall-clock time; production
uses Redis's own clock. The grant times recorded are the times the scripts granted at.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from assay.llm.clock import FakeClock
from assay.llm.ratelimit import LimiterBank, LocalLimiter, SmoothBucket
from assay.llm.redis_limits import BUDGET_TTL_S, RedisBudget, RedisLimiter
from assay.llm.usage import Budget, LocalSpending, Spending, charged

pytestmark = pytest.mark.redis
KEY = "openai|http://sim/v1|sim-gpt|None"


class RecordingLimiter(RedisLimiter):
    """Records the (fake) time of every slot the Lua script grants."""

    def __init__(self, *args: Any, grants: list[float], **kwargs: Any) -> None:
        super().__init__(*args, server_clock=False, **kwargs)
        self.grants = grants

    async def _try(self, key: str, shape: SmoothBucket, tokens: int) -> float:
        now = self.clock.now()
        wait = await super()._try(key, shape, tokens)
        if wait == 0:
            self.grants.append(now)
        return wait


def max_in_any_window(times: list[float], window_s: float) -> int:
    """The most events in any half-open window [t, t + window_s)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _flood(limiters: list[Any], tasks_each: int, rpm: float, **acquire: Any) -> None:
    await asyncio.gather(
        *(
            limiter.acquire(KEY, rpm, acquire.get("tpm"), acquire.get("tokens", 0))
            for limiter in limiters
            for _ in range(tasks_each)
        )
    )


def test_three_processes_share_one_rolling_window(redis_url: str) -> None:
    """3 limiters x 40 concurrent callers at rpm=60: every caller gets a slot, and no rolling
    60 s holds more than 60 grants - the same bound a single local bucket gives."""
    grants: list[float] = []

    async def scenario() -> None:
        clock = FakeClock()
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        limiters = [RecordingLimiter(c, clock, grants=grants) for c in clients]
        await _flood(limiters, 40, rpm=60)
        for c in clients:
            await c.aclose()

    asyncio.run(scenario())
    assert len(grants) == 120
    assert max_in_any_window(grants, 60.0) <= 60
    assert max_in_any_window(grants, 60.0) >= 55  # the limit binds: the slots are used


def test_per_process_buckets_would_break_the_limit() -> None:
    """The failure the shared limiter prevents: three local banks each allow ~60 per minute."""

    async def scenario() -> list[float]:
        clock = FakeClock()
        grants: list[float] = []
        limiters = [LocalLimiter(LimiterBank(clock)) for _ in range(3)]

        async def one(limiter: LocalLimiter) -> None:
            await limiter.acquire(KEY, 60, None, 0)
            grants.append(clock.now())

        await asyncio.gather(*(one(lim) for lim in limiters for _ in range(40)))
        return grants

    assert max_in_any_window(asyncio.run(scenario()), 60.0) > 60


def test_a_pause_in_one_process_holds_the_others(redis_url: str) -> None:
    async def scenario() -> tuple[float, float]:
        clock = FakeClock()
        a_client, b_client = (aioredis.Redis.from_url(redis_url) for _ in range(2))
        a = RedisLimiter(a_client, clock, server_clock=False)
        b = RedisLimiter(b_client, clock, server_clock=False)
        await a.acquire(KEY, 600, None, 0)
        await a.pause(KEY, 30.0)  # a 429 with Retry-After: 30 seen by process a
        paused_at = clock.now()
        await b.acquire(KEY, 600, None, 0)
        waited = clock.now() - paused_at
        await a_client.aclose()
        await b_client.aclose()
        return waited, 30.0

    waited, pause = asyncio.run(scenario())
    assert waited >= pause - 1e-6


def test_tokens_per_minute_are_shared_too(redis_url: str) -> None:
    """tpm=6,000 and 1,000-token calls from two processes: at most 6,000 tokens a minute."""
    grants: list[float] = []

    async def scenario() -> None:
        clock = FakeClock()
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
        limiters = [RecordingLimiter(c, clock, grants=grants) for c in clients]
        await _flood(limiters, 10, rpm=6000, tpm=6000, tokens=1000)
        for c in clients:
            await c.aclose()

    asyncio.run(scenario())
    assert len(grants) == 20 and max_in_any_window(grants, 60.0) * 1000 <= 6000


def test_concurrent_reservations_never_overspend(redis_url: str) -> None:
    """200 tasks in two 'processes' reserve 0.03 USD each against 1 USD: exactly 33 fit."""

    async def scenario() -> tuple[int, float]:
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
        budgets = [RedisBudget(c, 1.0, scope="t") for c in clients]
        held = await asyncio.gather(*(b.try_reserve(0.03) for b in budgets for _ in range(100)))
        reserved = await budgets[1].reserved_today()
        for c in clients:
            await c.aclose()
        return sum(r is not None for r in held), reserved

    fitted, reserved = asyncio.run(scenario())
    assert fitted == 33 and math.isclose(reserved, 0.99)


def test_a_second_process_and_a_restarted_one_see_the_days_spend(redis_url: str) -> None:
    async def scenario() -> tuple[float, float, bool, int]:
        first_client = aioredis.Redis.from_url(redis_url)
        first = RedisBudget(first_client, 1.0, scope="t")
        held = await first.try_reserve(0.5)
        assert held is not None
        await first.settle(held, 0.4)
        await first_client.aclose()  # the process stops
        second_client = aioredis.Redis.from_url(redis_url)
        second = RedisBudget(second_client, 1.0, scope="t")
        seen = await second.spent_today()
        reserved = await second.reserved_today()
        refused = await second.try_reserve(0.7) is None  # 0.4 spent + 0.7 > 1.0
        ttl = await second_client.ttl(second.day_key(second.today()))
        await second_client.aclose()
        return seen, reserved, refused, ttl

    seen, reserved, refused, ttl = asyncio.run(scenario())
    assert math.isclose(seen, 0.4) and reserved == 0.0 and refused
    assert BUDGET_TTL_S - 60 < ttl <= BUDGET_TTL_S


def test_a_reservation_made_yesterday_is_released_on_yesterday_and_spent_today(
    redis_url: str,
) -> None:
    days = {"today": date(2026, 1, 1)}

    async def scenario() -> tuple[float, float, float]:
        client = aioredis.Redis.from_url(redis_url)
        budget = RedisBudget(client, 1.0, scope="t", today=lambda: days["today"])
        held = await budget.try_reserve(0.5)
        assert held is not None
        days["today"] += timedelta(days=1)
        await budget.settle(held, 0.2)
        yesterday = await client.hget(budget.day_key(date(2026, 1, 1)), "reserved")
        result = (float(yesterday), await budget.spent_today(), await budget.reserved_today())
        await client.aclose()
        return result

    assert asyncio.run(scenario()) == (0.0, 0.2, 0.0)


async def _never_answers() -> Any:
    await asyncio.sleep(3600)


async def _answers_for(usd: float) -> Any:
    return type("Outcome", (), {"cost": usd})()


def _budgets(redis_url: str) -> dict[str, Callable[[], tuple[Spending, Callable[[], Awaitable]]]]:
    def local() -> tuple[Spending, Callable[[], Awaitable]]:
        budget = Budget(1.0)

        async def state() -> tuple[float, float]:
            return budget.spent_today(), budget.reserved_usd

        return LocalSpending(budget), state

    def shared() -> tuple[Spending, Callable[[], Awaitable]]:
        client = aioredis.Redis.from_url(redis_url)
        budget = RedisBudget(client, 1.0, scope="charged")

        async def state() -> tuple[float, float]:
            return await budget.spent_today(), await budget.reserved_today()

        return budget, state

    return {"local": local, "redis": shared}


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_timed_out_call_is_charged_at_its_reservation_a_finished_one_at_its_cost(
    redis_url: str, kind: str
) -> None:
    """The same rule for both budgets: the provider may have billed a call we stopped waiting
    for, so it costs its whole reservation; a call that answers costs what it reported."""

    async def scenario() -> list[tuple[float, float]]:
        spending, state = _budgets(redis_url)[kind]()
        seen = []
        held = await spending.try_reserve(0.3)
        assert held is not None
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(charged(spending, held, _never_answers(), _cost), 0.01)
        seen.append(await state())
        held = await spending.try_reserve(0.3)
        assert held is not None
        task = asyncio.ensure_future(charged(spending, held, _never_answers(), _cost))
        await asyncio.sleep(0)
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        seen.append(await state())
        held = await spending.try_reserve(0.3)
        assert held is not None
        await charged(spending, held, _answers_for(0.05), _cost)
        seen.append(await state())
        return seen

    after_timeout, after_cancel, after_answer = asyncio.run(scenario())
    assert math.isclose(after_timeout[0], 0.3) and after_timeout[1] == 0.0
    assert math.isclose(after_cancel[0], 0.6) and after_cancel[1] == 0.0
    assert math.isclose(after_answer[0], 0.65) and after_answer[1] == 0.0


def _cost(outcome: Any) -> float:
    return float(outcome.cost)
