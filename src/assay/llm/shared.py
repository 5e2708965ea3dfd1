"""One place that decides where a process's limits, budget and cache live.

With ``ASSAY_REDIS_URL`` set they are shared through that Redis by every process (the scorer's
replicas, a fan-out's Ray workers); unset, they live in this process. A Redis that does not answer
at start-up is a :class:`~assay.errors.ConfigError`: the shared limits fail closed rather than
fall back to per-process limits that would multiply with the replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assay.errors import ConfigError
from assay.llm.clock import Clock
from assay.llm.ratelimit import WINDOW_S, Limiter, LocalLimiter, bank_for
from assay.llm.redis_limits import RedisBudget, RedisLimiter, check_reachable, redis_client
from assay.llm.usage import Budget, LocalSpending, Spending, utc_today


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def require_redis(url: str) -> None:
    """Fail closed: a :class:`ConfigError` unless the Redis at ``url`` answers now."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"ASSAY_REDIS_URL={redacted(url)!r}: use redis://host:port/db")
    try:
        check_reachable(url)
    except PermissionError as exc:
        raise ConfigError(
            f"ASSAY_REDIS_URL={redacted(url)!r}: Redis refuses this client ({exc}); set "
            "ASSAY_REDIS_PASSWORD to its password (Secret assay-redis in the cluster)"
        ) from None
    except ConnectionError as exc:
        raise ConfigError(
            f"ASSAY_REDIS_URL={redacted(url)!r}: Redis does not answer ({exc}); the shared rate "
            "limits and budget fail closed - start Redis or unset ASSAY_REDIS_URL"
        ) from None


def open_limiter(resilience: Any, redis_url: str | None, clock: Clock | None = None) -> Limiter:
    """The limiter of this process: Redis-shared with a URL, else a local bank."""
    if redis_url is None:
        return LocalLimiter(bank_for(resilience, clock))
    return RedisLimiter(
        redis_client(redis_url),
        clock,
        burst_s=resilience.burst_s,
        safety_margin_s=resilience.safety_margin_s,
        window_s=resilience.rate_window_s,
    )


def open_daily_budget(
    limit_usd: float | None,
    redis_url: str | None,
    *,
    scope: str = "llm",
    today: Callable[[], date] = utc_today,
) -> Spending:
    """The daily budget: Redis-shared (keyed by ``scope`` and UTC day) with a URL, else local."""
    if redis_url is None:
        return LocalSpending(Budget(limit_usd, today=today))
    return RedisBudget(redis_client(redis_url), limit_usd, scope=scope, today=today)


class RedisLimiterActor:
    """The body of a fan-out's Ray limiter actor when the limits are shared through Redis."""

    def __init__(
        self,
        redis_url: str,
        burst_s: float = 1.0,
        safety_margin_s: float = 0.5,
        window_s: float = WINDOW_S,
    ) -> None:
        self.limiter = RedisLimiter(
            redis_client(redis_url),
            burst_s=burst_s,
            safety_margin_s=safety_margin_s,
            window_s=window_s,
        )

    async def acquire(
        self, key: str, rpm: float, tpm: float | None, tokens: int, priority: int = 0
    ) -> float:
        return await self.limiter.acquire(key, rpm, tpm, tokens, priority)

    async def pause(self, key: str, seconds: float) -> None:
        await self.limiter.pause(key, seconds)

    async def adjust_tokens(self, key: str, delta: int) -> None:
        await self.limiter.adjust_tokens(key, delta)


def start_shared_limiter_actor(ray: Any, resilience: Any, redis_url: str) -> Any:
    """A fan-out's limiter actor whose buckets are in Redis (0 CPUs, as the local one)."""
    actor_cls = ray.remote(num_cpus=0, max_concurrency=10_000)(RedisLimiterActor)
    return actor_cls.remote(
        redis_url,
        burst_s=resilience.burst_s,
        safety_margin_s=resilience.safety_margin_s,
        window_s=resilience.rate_window_s,
    )
