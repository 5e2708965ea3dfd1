"""Per-endpoint rate limiting: a smoothing token bucket shared by every worker of a run.

``SmoothBucket`` is the generic cell-rate algorithm (virtual scheduling): requests are spaced
``interval`` apart, with a small catch-up allowance ``burst_s`` after a pause. Any window of
``window_s`` seconds then holds at most ``floor((window_s + burst_s) / interval) + 1`` requests;
the interval is chosen so that this stays at or under the endpoint's limit even when requests
reach the server up to ``safety_margin_s`` later or earlier than planned. So the server never
sees more than ``rpm`` requests in any rolling minute, and never a per-minute burst.

The buckets of a run live in ONE place: a ``LimiterBank`` in this process for the local path
(the bias-scorer server), or a ``RateLimiterActor`` (Ray) that every fan-out worker awaits.
``Retry-After`` and rate-limit headers pause an endpoint's bucket.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from assay.llm.clock import Clock, MonotonicClock

WINDOW_S = 60.0


class SmoothBucket:
    """GCRA state for one endpoint: requests (and optionally tokens) per rolling window."""

    def __init__(
        self,
        rpm: float,
        tpm: float | None = None,
        *,
        burst_s: float = 1.0,
        safety_margin_s: float = 0.5,
        window_s: float = WINDOW_S,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self.burst_s = burst_s
        self.safety_margin_s = safety_margin_s
        limit = rpm * window_s / 60.0
        slack = window_s + burst_s + safety_margin_s
        self.interval = slack / max(limit - 1.0, 1.0)
        self.token_interval = slack / (tpm * window_s / 60.0) if tpm else 0.0
        self.tat: float | None = None  # theoretical arrival time of the next request
        self.token_tat: float | None = None
        self.paused_until = -math.inf

    @property
    def effective_rpm(self) -> float:
        """The sustained request rate the bucket allows (below rpm by the safety slack)."""
        return 60.0 / self.interval

    def try_acquire(self, now: float, tokens: int = 0) -> float:
        """Take a slot and return 0.0, or return how long to wait before asking again."""
        if self.tat is None:
            self.tat = now + self.burst_s  # no start-up burst: the first slots are evenly spaced
            self.token_tat = now + self.burst_s
        earliest = max(self.paused_until, self.tat - self.burst_s)
        if self.tpm and tokens:
            assert self.token_tat is not None
            earliest = max(earliest, self.token_tat - self.burst_s)
        if now + 1e-9 < earliest:
            return earliest - now
        self.tat = max(self.tat, now) + self.interval
        if self.tpm and tokens:
            assert self.token_tat is not None
            self.token_tat = max(self.token_tat, now) + tokens * self.token_interval
        return 0.0

    def pause(self, now: float, seconds: float) -> None:
        """Send nothing on this endpoint before ``now + seconds`` (Retry-After)."""
        self.paused_until = max(self.paused_until, now + max(0.0, seconds))

    def adjust_tokens(self, delta: int) -> None:
        """Correct the token schedule once the real usage of a call is known."""
        if self.tpm and self.token_tat is not None:
            self.token_tat += delta * self.token_interval


class LimiterBank:
    """Every endpoint's bucket, with an async ``acquire`` that queues for the slot."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        burst_s: float = 1.0,
        safety_margin_s: float = 0.5,
        window_s: float = WINDOW_S,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.burst_s = burst_s
        self.safety_margin_s = safety_margin_s
        self.window_s = window_s
        self._buckets: dict[str, SmoothBucket] = {}
        self._queues: dict[str, PriorityGate] = {}

    def bucket(self, key: str, rpm: float, tpm: float | None = None) -> SmoothBucket:
        current = self._buckets.get(key)
        if current is None or current.rpm != rpm or current.tpm != tpm:
            fresh = SmoothBucket(
                rpm,
                tpm,
                burst_s=self.burst_s,
                safety_margin_s=self.safety_margin_s,
                window_s=self.window_s,
            )
            if current is not None:
                fresh.paused_until = current.paused_until
            self._buckets[key] = current = fresh
            self._queues.setdefault(key, PriorityGate())
        return current

    async def acquire(
        self, key: str, rpm: float, tpm: float | None = None, tokens: int = 0, priority: int = 0
    ) -> float:
        """Wait until the endpoint may be called; returns the seconds waited.

        Callers queue per endpoint; a higher ``priority`` (a retry) is served first, so a retried
        call does not queue behind every first attempt again.
        """
        bucket = self.bucket(key, rpm, tpm)
        started = self.clock.now()
        gate = self._queues[key]
        await gate.enter(priority)
        try:  # only the head of the queue waits on the bucket; pauses are re-checked on waking
            while (wait := bucket.try_acquire(self.clock.now(), tokens)) > 0:
                await self.clock.sleep(wait)
        finally:
            gate.leave()
        return self.clock.now() - started

    def pause(self, key: str, seconds: float) -> None:
        if key in self._buckets:
            self._buckets[key].pause(self.clock.now(), seconds)

    def adjust_tokens(self, key: str, delta: int) -> None:
        if key in self._buckets:
            self._buckets[key].adjust_tokens(delta)

    def describe(self) -> dict[str, dict[str, float]]:
        return {
            key: {"rpm": b.rpm, "effective_rpm": b.effective_rpm, "paused_until": b.paused_until}
            for key, b in self._buckets.items()
        }


class PriorityGate:
    """A lock whose waiters are served by priority (highest first), then in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def enter(self, priority: int) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.leave()  # ownership was handed over just as we were cancelled
            raise

    def leave(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # ownership passes directly to the next waiter
                return
        self._held = False


class Limiter(Protocol):
    """What a caller needs from the run's shared limiter (local or a Ray actor)."""

    async def acquire(
        self, key: str, rpm: float, tpm: float | None, tokens: int, priority: int = 0
    ) -> float: ...
    async def pause(self, key: str, seconds: float) -> None: ...
    async def adjust_tokens(self, key: str, delta: int) -> None: ...


class LocalLimiter:
    """The in-process limiter (bias-scorer server, unit tests)."""

    def __init__(self, bank: LimiterBank | None = None) -> None:
        self.bank = bank or LimiterBank()

    async def acquire(
        self, key: str, rpm: float, tpm: float | None, tokens: int, priority: int = 0
    ) -> float:
        return await self.bank.acquire(key, rpm, tpm, tokens, priority)

    async def pause(self, key: str, seconds: float) -> None:
        self.bank.pause(key, seconds)

    async def adjust_tokens(self, key: str, delta: int) -> None:
        self.bank.adjust_tokens(key, delta)


class RateLimiterActor(LocalLimiter):
    """The body of the Ray actor holding a run's buckets (see ``start_limiter_actor``).

    The same async methods as ``LocalLimiter``; the actor owns its bank and can describe it.
    """

    def __init__(
        self, burst_s: float = 1.0, safety_margin_s: float = 0.5, window_s: float = WINDOW_S
    ) -> None:
        super().__init__(
            LimiterBank(burst_s=burst_s, safety_margin_s=safety_margin_s, window_s=window_s)
        )

    async def describe(self) -> dict[str, dict[str, float]]:
        return self.bank.describe()


class RayLimiter:
    """Client side of the shared Ray actor: every worker awaits the same buckets."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def acquire(
        self, key: str, rpm: float, tpm: float | None, tokens: int, priority: int = 0
    ) -> float:
        return float(await self.handle.acquire.remote(key, rpm, tpm, tokens, priority))

    async def pause(self, key: str, seconds: float) -> None:
        await self.handle.pause.remote(key, seconds)

    async def adjust_tokens(self, key: str, delta: int) -> None:
        await self.handle.adjust_tokens.remote(key, delta)


def bank_for(resilience: Any, clock: Clock | None = None) -> LimiterBank:
    """A LimiterBank with an ensemble's ``Resilience`` settings."""
    return LimiterBank(
        clock,
        burst_s=resilience.burst_s,
        safety_margin_s=resilience.safety_margin_s,
        window_s=resilience.rate_window_s,
    )


def start_limiter_actor(ray: Any, resilience: Any) -> Any:
    """Create the run's limiter actor (a tiny async actor; 0 CPUs so it never blocks workers)."""
    actor_cls = ray.remote(num_cpus=0, max_concurrency=10_000)(RateLimiterActor)
    return actor_cls.remote(
        burst_s=resilience.burst_s,
        safety_margin_s=resilience.safety_margin_s,
        window_s=resilience.rate_window_s,
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds in '1.5', '20ms', '6m0s', '1h2m3s' (OpenAI's reset headers) or None."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _seconds_until(text: str, now: datetime) -> float | None:
    """Seconds until an HTTP date or an RFC 3339 timestamp."""
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            moment = None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def pause_from_headers(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """How long to pause an endpoint according to its response headers, or None.

    Understands ``retry-after`` (seconds or HTTP date), ``retry-after-ms``, OpenAI/Together
    ``x-ratelimit-remaining-*`` = 0 with ``x-ratelimit-reset-*``, and Anthropic's
    ``anthropic-ratelimit-*-remaining`` = 0 with its RFC 3339 ``-reset``.
    """
    h = {k.lower(): str(v) for k, v in headers.items()}
    now = now or datetime.now(UTC)
    if "retry-after-ms" in h:
        try:
            return max(0.0, float(h["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    if "retry-after" in h:
        seconds = parse_duration(h["retry-after"])
        return seconds if seconds is not None else _seconds_until(h["retry-after"], now)
    waits: list[float] = []
    for kind in ("requests", "tokens"):
        if h.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
            reset = parse_duration(h.get(f"x-ratelimit-reset-{kind}", ""))
            if reset is not None:
                waits.append(reset)
        if h.get(f"anthropic-ratelimit-{kind}-remaining", "").strip() == "0":
            reset = _seconds_until(h.get(f"anthropic-ratelimit-{kind}-reset", ""), now)
            if reset is not None:
                waits.append(reset)
    return max(waits) if waits else None
