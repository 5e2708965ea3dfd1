"""Tokens and cost per call, per rater and per run, and the budget (a run's or a day's).

The budget is checked BEFORE a call is sent, against what is already spent plus a worst-case
cost for every call in flight (input tokens bounded by the prompt's UTF-8 byte count, output =
max_tokens, twice for a possible repair retry), so a run stops cleanly before it can overspend.
The providers' tokenizers are byte-level BPEs: every token stands for at least one byte of UTF-8,
so the byte count is an upper bound whatever the script (emoji and rare CJK cost 3-4 tokens a
character, where chars/4 guessed a quarter of one).

Callers go through the async :class:`Spending` face - :class:`LocalSpending` (this process) or
``redis_limits.RedisBudget`` (every process sharing a Redis) - and :func:`charged`, which settles
a finished call at its actual cost and a call that did not finish (cancelled, timed out, failed
without reporting its cost) at its reservation: the provider may have billed it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol, TypeVar

from assay.llm.ensemble import RaterConfig

T = TypeVar("T")
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 16
REPAIR_EXTRA_TOKENS = 4096
SETTLE_GRACE_S = 1.0


def estimate_tokens(*texts: str) -> int:
    """A typical token count for English text (the rate limiter's tokens-per-minute pacing; it
    is corrected by the provider's count afterwards). Never for money: see :func:`token_bound`."""
    return sum(len(t) for t in texts) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def token_bound(*texts: str) -> int:
    """The most tokens ``texts`` can be for a byte-level BPE tokenizer: one per UTF-8 byte (a
    lone surrogate counts as the 3 bytes of its replacement), plus the message framing."""
    return sum(len(t.encode("utf-8", "replace")) for t in texts) + MESSAGE_OVERHEAD_TOKENS


def cost_usd(rater: RaterConfig, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * rater.price_per_1k_input + output_tokens * rater.price_per_1k_output
    ) / 1000.0


def worst_case_cost(rater: RaterConfig, system: str, prompt: str, repair_calls: int = 1) -> float:
    """The most one rating can cost: its call plus its repair calls, each at max_tokens out and
    at most :func:`token_bound` in (a repair prompt repeats the passage and adds the rejected
    answer, cut to 500 characters, and the problem: at most ``REPAIR_EXTRA_TOKENS`` more)."""
    first = token_bound(system, prompt)
    calls = cost_usd(rater, first, rater.max_tokens)
    repair = cost_usd(rater, first + REPAIR_EXTRA_TOKENS, rater.max_tokens)
    return calls + repair * repair_calls


@dataclass
class RaterUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0


@dataclass
class Usage:
    """Usage of a run, per rater."""

    by_rater: dict[str, RaterUsage] = field(default_factory=lambda: defaultdict(RaterUsage))

    def add(
        self, rater: str, *, calls: int, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        u = self.by_rater[rater]
        u.calls += calls
        u.input_tokens += input_tokens
        u.output_tokens += output_tokens
        u.cost_usd += cost

    def add_cache_hit(self, rater: str) -> None:
        self.by_rater[rater].cache_hits += 1

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.by_rater.values())

    @property
    def calls(self) -> int:
        return sum(u.calls for u in self.by_rater.values())

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: dict(vars(u)) for name, u in self.by_rater.items()}


def utc_today() -> date:
    return datetime.now(UTC).date()


class Budget:
    """Spent + reserved must stay within ``limit_usd`` (None = unlimited).

    ``spent_usd``: what was spent before this budget was opened (a resumed study's earlier
    runs). With ``today`` (e.g. :func:`utc_today`) it is a daily budget: the spend starts again
    at zero when the day changes (reservations of calls in flight are kept).
    """

    def __init__(
        self,
        limit_usd: float | None,
        *,
        spent_usd: float = 0.0,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.exhausted = False
        self.today = today
        self.day = today() if today is not None else None

    def try_reserve(self, amount: float) -> bool:
        """Reserve ``amount`` before a call; False (and ``exhausted``) when it does not fit."""
        self._start_new_day()
        if (
            self.limit_usd is not None
            and self.spent_usd + self.reserved_usd + amount > self.limit_usd
        ):
            self.exhausted = True
            return False
        self.reserved_usd += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        """Release ``reserved`` and count ``actual`` as spent."""
        self._start_new_day()
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += actual

    def spent_today(self) -> float:
        """What is spent so far (today, for a daily budget)."""
        self._start_new_day()
        return self.spent_usd

    def _start_new_day(self) -> None:
        if self.today is None:
            return
        day = self.today()
        if day != self.day:
            self.day, self.spent_usd, self.exhausted = day, 0.0, False


@dataclass(frozen=True)
class Reservation:
    """``amount`` USD held for one call, on ``day`` (None: a run's budget, not a daily one)."""

    amount: float
    day: date | None = None


class Spending(Protocol):
    """A budget as callers use it: :class:`LocalSpending` or ``redis_limits.RedisBudget``."""

    @property
    def limit_usd(self) -> float | None: ...
    @property
    def exhausted(self) -> bool: ...

    async def try_reserve(self, amount: float) -> Reservation | None: ...
    async def settle(self, reservation: Reservation, actual: float) -> None: ...
    async def spent_today(self) -> float: ...


class LocalSpending:
    """The async face of a :class:`Budget` held in this process."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    @property
    def limit_usd(self) -> float | None:
        return self.budget.limit_usd

    @property
    def exhausted(self) -> bool:
        return self.budget.exhausted

    async def try_reserve(self, amount: float) -> Reservation | None:
        if not self.budget.try_reserve(amount):
            return None
        return Reservation(amount, self.budget.day)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        self.budget.settle(reservation.amount, actual)

    async def spent_today(self) -> float:
        return self.budget.spent_today()


def as_spending(budget: Budget | Spending) -> Spending:
    return LocalSpending(budget) if isinstance(budget, Budget) else budget


async def charged(
    spending: Spending, reservation: Reservation, call: Awaitable[T], cost_of: Callable[[T], float]
) -> T:
    """Await ``call`` and settle its reservation: at ``cost_of(result)`` when it returns, at the
    full reservation when it does not (cancelled, timed out or raised). The settling itself is
    shielded, so a second cancellation cannot lose the charge."""
    try:
        result = await call
    except BaseException:
        await asyncio.shield(spending.settle(reservation, reservation.amount))
        raise
    await asyncio.shield(spending.settle(reservation, cost_of(result)))
    return result


class DeadlineSpending:
    """``inner`` with every call bounded by ``until`` (event-loop time): a budget store that does
    not answer (a frozen Redis) cannot hold a request past its deadline.

    Reserving or reading past the deadline raises ``TimeoutError`` (the caller fails closed). A
    settle that cannot be written is logged, not raised: its reservation stays counted as
    reserved for the day, so the record over-counts the call, never under-counts it. A settle
    gets ``SETTLE_GRACE_S`` past the deadline: a rating that finished at the deadline is still
    recorded at its actual cost.
    """

    def __init__(
        self, inner: Spending, until: float, on_lost_settle: Callable[[str], None]
    ) -> None:
        self.inner = inner
        self.until = until
        self.on_lost_settle = on_lost_settle

    @property
    def limit_usd(self) -> float | None:
        return self.inner.limit_usd

    @property
    def exhausted(self) -> bool:
        return self.inner.exhausted

    async def try_reserve(self, amount: float) -> Reservation | None:
        async with asyncio.timeout_at(self.until):
            return await self.inner.try_reserve(amount)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(max(self.until, loop.time()) + SETTLE_GRACE_S):
                await self.inner.settle(reservation, actual)
        except Exception as exc:  # the store is gone or frozen: keep the reservation counted
            self.on_lost_settle(f"{type(exc).__name__}: {exc}")

    async def spent_today(self) -> float:
        async with asyncio.timeout_at(self.until):
            return await self.inner.spent_today()
