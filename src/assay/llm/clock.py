"""Time sources for the LLM layer: the real monotonic clock, and a fake one for tests.

Everything that waits (rate limiter, breaker cool-down, retry backoff) takes a ``Clock`` so tests
can drive time by hand instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A virtual clock: ``sleep`` parks the caller until ``advance`` moves time past its deadline.

    With ``autoadvance=True`` a sleeping coroutine moves time forward itself (to the earliest
    pending deadline), so sequential code under test runs instantly while keeping exact times.
    """

    def __init__(self, start: float = 1000.0, *, autoadvance: bool = True) -> None:
        self._now = start
        self.autoadvance = autoadvance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        if seconds == 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        while self.autoadvance and not future.done():
            # let every other ready coroutine run (and maybe park) before time jumps
            for _ in range(5):
                await asyncio.sleep(0)
            if not future.done() and self._sleepers:
                self.advance(max(0.0, self._sleepers[0][0] - self._now))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now + 1e-12:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
