"""Each caller's own share of the bias scorer: a daily budget (USD) and passages in progress.

One caller can neither spend the day's budget for everybody nor fill the queue: beyond its own
daily budget it gets 429 until midnight UTC, beyond its share of the queue 429 with Retry-After,
while the others are served. With ``--redis-url`` both are shared by every replica (the budget
as a ``RedisBudget`` per caller, the queue as ``RedisHolds``); without, they are this process's.

Every call to the store is bounded by the request's deadline: a store that does not answer is a
503 (:class:`SpendStoreUnavailable`), never a request held past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from grpc_interceptor.exceptions import ResourceExhausted
from kserve.errors import ModelNotReady

from assay.llm.redis_limits import RedisHolds, redis_client
from assay.llm.shared import open_daily_budget
from assay.llm.usage import Reservation, Spending
from assay.serving.bias_callers import Caller

QUEUE_RETRY_AFTER_S = 5
HOLDS_PREFIX = "assay:inflight:"
HOLD_MARGIN_S = 30.0  # a hold outlives its request's deadline by this much, then expires


class CallerOverQuota(ResourceExhausted):
    """A caller past one of its own limits: 429 + Retry-After over REST, RESOURCE_EXHAUSTED
    over gRPC. ``limit`` names it (``caller_daily_budget`` or ``caller_queue``)."""

    def __init__(self, caller: str, limit: str, message: str, retry_after_s: int) -> None:
        self.caller, self.limit, self.retry_after_s = caller, limit, retry_after_s
        self.reason = f"{message}; retry after {retry_after_s} s"
        super().__init__(self.reason)


class SpendStoreUnavailable(ModelNotReady):
    """The shared spend record (Redis) did not answer in time: 503 / UNAVAILABLE, nothing
    rated or charged."""

    def __init__(self, message: str) -> None:
        self.reason = message

    def __str__(self) -> str:
        return self.reason


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


class CallerSpending:
    """A request's budget: the caller's daily one AND the scorer's (see ``usage.Spending``).

    A reservation must fit both; ``refused_by_caller`` records that the caller's own budget
    said no (the request then gets 429, not 503). Each settled dollar is added to the caller's
    spend metric."""

    def __init__(
        self, caller: Spending | None, scorer: Spending, on_spent: Callable[[float], None]
    ) -> None:
        self.caller, self.scorer, self.on_spent = caller, scorer, on_spent
        self.refused_by_caller = False

    @property
    def limit_usd(self) -> float | None:
        return self.scorer.limit_usd

    @property
    def exhausted(self) -> bool:
        return self.scorer.exhausted

    async def try_reserve(self, amount: float) -> Reservation | None:
        own = None
        if self.caller is not None:
            own = await self.caller.try_reserve(amount)
            if own is None:
                self.refused_by_caller = True
                return None
        shared = await self.scorer.try_reserve(amount)
        if shared is None and own is not None and self.caller is not None:
            await self.caller.settle(own, 0.0)
        return shared

    async def settle(self, reservation: Reservation, actual: float) -> None:
        if self.caller is not None:
            await self.caller.settle(reservation, actual)
        await self.scorer.settle(reservation, actual)
        self.on_spent(actual)

    async def spent_today(self) -> float:
        return await self.scorer.spent_today()


class CallerQuotas:
    """Every caller's budget and queue share, and the checks a request passes before rating."""

    def __init__(
        self,
        *,
        scope: str,
        redis_url: str | None,
        default_budget_usd: float | None,
        default_queued: int,
        hold_ttl_s: float,
    ) -> None:
        self.scope, self.redis_url = scope, redis_url
        self.default_budget_usd, self.default_queued = default_budget_usd, default_queued
        self.hold_ttl_s = hold_ttl_s + HOLD_MARGIN_S
        self._budgets: dict[str, Spending] = {}
        self._local_held: dict[str, int] = defaultdict(int)
        self._holds: RedisHolds | None = None
        if redis_url is not None:
            self._holds = RedisHolds(redis_client(redis_url), f"{HOLDS_PREFIX}{scope}:")

    def budget_usd(self, caller: Caller) -> float | None:
        return (
            caller.daily_budget_usd
            if caller.daily_budget_usd is not None
            else (self.default_budget_usd)
        )

    def queued(self, caller: Caller) -> int:
        return caller.max_queued_passages or self.default_queued

    def budget_of(self, caller: Caller) -> Spending | None:
        """The caller's daily budget (None: no cap of its own); one per caller, made once."""
        limit = self.budget_usd(caller)
        if limit is None:
            return None
        if caller.id not in self._budgets:
            scope = f"{self.scope}:caller:{caller.id}"
            self._budgets[caller.id] = open_daily_budget(limit, self.redis_url, scope=scope)
        return self._budgets[caller.id]

    async def check_budget(self, caller: Caller) -> None:
        """429 when the caller's day is spent (before anything is rated or reserved)."""
        budget, limit = self.budget_of(caller), self.budget_usd(caller)
        if budget is None or limit is None:
            return
        spent = await budget.spent_today()
        if spent >= limit:
            raise over_budget(caller, limit)

    @contextlib.asynccontextmanager
    async def queue_share(self, caller: Caller, passages: int, until: float) -> AsyncIterator[None]:
        """Hold ``passages`` of the caller's share of the queue while the request runs; the
        shared store must answer before ``until`` (else 503)."""
        limit = self.queued(caller)
        if self._holds is None:
            held = self._local_held[caller.id]
            if held and held + passages > limit:
                raise over_queue(caller, held, limit)
            self._local_held[caller.id] += passages
            try:
                yield
            finally:
                self._local_held[caller.id] -= passages
            return
        member = uuid.uuid4().hex
        try:
            async with asyncio.timeout_at(until):
                admitted, held = await self._holds.hold(
                    caller.id, member, passages, limit, self.hold_ttl_s
                )
        except Exception as exc:
            raise store_unavailable(exc) from None
        if not admitted:
            raise over_queue(caller, held, limit)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # else the hold expires after its ttl
                async with asyncio.timeout(1.0):
                    await self._holds.release(caller.id, member, passages)


def over_budget(caller: Caller, limit: float) -> CallerOverQuota:
    return CallerOverQuota(
        caller.id,
        "caller_daily_budget",
        f"caller {caller.id!r} has spent its daily budget of {limit:g} USD (it starts again "
        "at midnight UTC)",
        seconds_to_utc_midnight(),
    )


def over_queue(caller: Caller, held: int, limit: int) -> CallerOverQuota:
    return CallerOverQuota(
        caller.id,
        "caller_queue",
        f"caller {caller.id!r} already has {held} passages in progress (its share of the "
        f"queue is {limit})",
        QUEUE_RETRY_AFTER_S,
    )


def store_unavailable(exc: BaseException) -> SpendStoreUnavailable:
    what = (
        "did not answer within the request's deadline"
        if isinstance(exc, TimeoutError)
        else f"failed ({type(exc).__name__})"
    )
    return SpendStoreUnavailable(
        f"the spend record (the shared Redis) {what}; nothing was rated or charged - retry later"
    )
