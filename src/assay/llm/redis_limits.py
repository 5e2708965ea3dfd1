"""Rate limits and the daily budget shared by every process through Redis (``ASSAY_REDIS_URL``).

Each operation is ONE Lua script, so Redis runs it atomically: no two processes can take the
same slot or the same dollars.

- ``RedisLimiter``: the GCRA of :class:`~assay.llm.ratelimit.SmoothBucket` with its state (the
  theoretical arrival times and the pause) in a hash per endpoint, and Redis's own clock
  (``TIME``) as the only clock, so the processes' clocks need not agree. The spacing is the local
  bucket's, so the same bound holds across all processes together: at most ``rpm`` requests (and
  ``tpm`` tokens) in any rolling window. Within a process, callers queue per endpoint by priority
  exactly as in ``LimiterBank`` (a retry first); only the head of each process's queue asks Redis,
  so the processes share an endpoint's slots first come, first served.
- ``RedisBudget``: spent and reserved USD of a UTC day in a hash
  ``assay:budget:{<scope>}:<day>`` that expires after two days, so a restarted process keeps the
  day's spend. ``try_reserve`` checks and adds the worst case in one step; ``settle`` releases
  the reservation on the day it was made and adds the actual cost to today.
- ``RedisHolds``: what each key (a caller) holds now (passages in progress) across every
  process, each hold expiring on its own so a crashed replica's holds do not stay forever.

Redis Cluster (and managed Redis in cluster mode) runs a script only when every key it is given
hashes to one slot (else CROSSSLOT). Each script here touches one key, except ``SETTLE_LUA``,
which touches two days of one scope: the scope is their hash tag (``{<scope>}``), so both days of
a scope live in one slot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from assay.llm.clock import Clock, MonotonicClock
from assay.llm.ratelimit import WINDOW_S, PriorityGate, SmoothBucket
from assay.llm.usage import Reservation, utc_today

LIMIT_PREFIX = "assay:ratelimit:"
BUDGET_PREFIX = "assay:budget:"
BUDGET_TTL_S = 2 * 24 * 3600
RECONNECT_TRIES = 3

# The time of a script: Redis's clock, or ARGV[n] when the caller passes one (a test's fake clock).
NOW_LUA = """
local function clock(given)
  if given then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
"""

# KEYS[1] bucket hash. ARGV: interval, token_interval, burst, tokens, window [, now].
# Returns the seconds to wait as a string ("0" = slot taken).
ACQUIRE_LUA = (
    NOW_LUA
    + """
local now = clock(ARGV[6])
local interval, token_interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, tokens, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'tat', 'token_tat', 'paused_until')
local tat = tonumber(s[1]) or (now + burst)
local token_tat = tonumber(s[2]) or (now + burst)
local paused = tonumber(s[3]) or 0
local earliest = math.max(paused, tat - burst)
if token_interval > 0 and tokens > 0 then earliest = math.max(earliest, token_tat - burst) end
if now + 1e-9 < earliest then return tostring(earliest - now) end
tat = math.max(tat, now) + interval
if token_interval > 0 and tokens > 0 then
  token_tat = math.max(token_tat, now) + tokens * token_interval
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'token_tat', tostring(token_tat))
local last = math.max(tat, token_tat, paused)
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + window) * 1000))
return '0'
"""
)

# KEYS[1] bucket hash. ARGV: seconds, window [, now].
PAUSE_LUA = (
    NOW_LUA
    + """
local now = clock(ARGV[3])
local untl = now + math.max(0, tonumber(ARGV[1]))
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if untl > paused then
  redis.call('HSET', KEYS[1], 'paused_until', tostring(untl))
  local ttl = redis.call('PTTL', KEYS[1])
  local want = math.ceil((untl - now + tonumber(ARGV[2])) * 1000)
  if ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
end
return 1
"""
)

# KEYS[1] bucket hash. ARGV: seconds to add to the token schedule.
ADJUST_LUA = """
local token_tat = tonumber(redis.call('HGET', KEYS[1], 'token_tat'))
if token_tat then
  redis.call('HSET', KEYS[1], 'token_tat', tostring(token_tat + tonumber(ARGV[1])))
end
return 1
"""

# KEYS[1] today's hash. ARGV: amount, limit ('' = none), ttl. Returns 1 (reserved) or 0.
RESERVE_LUA = """
local amount = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
local spent, reserved = tonumber(s[1]) or 0, tonumber(s[2]) or 0
if ARGV[2] ~= '' and spent + reserved + amount > tonumber(ARGV[2]) + 1e-12 then return 0 end
redis.call('HINCRBYFLOAT', KEYS[1], 'reserved', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS[1] the reservation's day, KEYS[2] today. ARGV: reserved, actual, ttl.
SETTLE_LUA = """
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved'))
if reserved then
  redis.call('HSET', KEYS[1], 'reserved', tostring(math.max(0, reserved - tonumber(ARGV[1]))))
end
redis.call('HINCRBYFLOAT', KEYS[2], 'spent', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
"""


class RedisLimiter:
    """The :class:`~assay.llm.ratelimit.Limiter` of every process sharing one Redis."""

    def __init__(
        self,
        client: Any,
        clock: Clock | None = None,
        *,
        burst_s: float = 1.0,
        safety_margin_s: float = 0.5,
        window_s: float = WINDOW_S,
        prefix: str = LIMIT_PREFIX,
        server_clock: bool = True,
    ) -> None:
        self.client = client
        self.clock = clock or MonotonicClock()
        self.server_clock = server_clock  # False: ``clock`` is the time (tests' FakeClock)
        self.burst_s, self.safety_margin_s, self.window_s = burst_s, safety_margin_s, window_s
        self.prefix = prefix
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._pause = client.register_script(PAUSE_LUA)
        self._adjust = client.register_script(ADJUST_LUA)
        self._shapes: dict[str, SmoothBucket] = {}
        self._queues: dict[str, PriorityGate] = {}

    def shape(self, key: str, rpm: float, tpm: float | None = None) -> SmoothBucket:
        """The local bucket's spacing for these limits (its state is unused: Redis holds it)."""
        current = self._shapes.get(key)
        if current is None or current.rpm != rpm or current.tpm != tpm:
            current = SmoothBucket(
                rpm,
                tpm,
                burst_s=self.burst_s,
                safety_margin_s=self.safety_margin_s,
                window_s=self.window_s,
            )
            self._shapes[key] = current
            self._queues.setdefault(key, PriorityGate())
        return current

    async def acquire(
        self, key: str, rpm: float, tpm: float | None, tokens: int, priority: int = 0
    ) -> float:
        """Wait until the endpoint may be called (by every process's count); the seconds waited."""
        shape = self.shape(key, rpm, tpm)
        started = self.clock.now()
        gate = self._queues[key]
        await gate.enter(priority)
        try:
            while (wait := await self._try(key, shape, tokens)) > 0:
                await self.clock.sleep(wait)
        finally:
            gate.leave()
        return self.clock.now() - started

    async def _try(self, key: str, shape: SmoothBucket, tokens: int) -> float:
        args = [shape.interval, shape.token_interval, self.burst_s, tokens, self.window_s]
        return float(await self._acquire(keys=[self.prefix + key], args=args + self._now()))

    async def pause(self, key: str, seconds: float) -> None:
        await self._pause(keys=[self.prefix + key], args=[seconds, self.window_s, *self._now()])

    def _now(self) -> list[float]:
        return [] if self.server_clock else [self.clock.now()]

    async def adjust_tokens(self, key: str, delta: int) -> None:
        shape = self._shapes.get(key)
        if shape is not None and shape.tpm:
            await self._adjust(keys=[self.prefix + key], args=[delta * shape.token_interval])


def budget_prefix(scope: str) -> str:
    """``assay:budget:{<scope>}:``: the scope is the hash tag, so every day of it (the keys
    ``SETTLE_LUA`` touches together) hashes to one Redis Cluster slot."""
    if not scope or "{" in scope or "}" in scope:
        raise ValueError(f"a budget scope is non-empty and has no braces, not {scope!r}")
    return f"{BUDGET_PREFIX}{{{scope}}}:"


class RedisBudget:
    """The daily budget of every process sharing one Redis (see :class:`usage.Spending`)."""

    def __init__(
        self,
        client: Any,
        limit_usd: float | None,
        *,
        scope: str = "llm",
        today: Callable[[], date] = utc_today,
    ) -> None:
        self.client = client
        self.limit_usd = limit_usd
        self.exhausted = False
        self.today = today
        self.prefix = budget_prefix(scope)
        self._reserve = client.register_script(RESERVE_LUA)
        self._settle = client.register_script(SETTLE_LUA)

    def day_key(self, day: date) -> str:
        return self.prefix + day.isoformat()

    async def try_reserve(self, amount: float) -> Reservation | None:
        day = self.today()
        limit = "" if self.limit_usd is None else repr(float(self.limit_usd))
        args = [repr(float(amount)), limit, BUDGET_TTL_S]
        if not int(await self._reserve(keys=[self.day_key(day)], args=args)):
            self.exhausted = True
            return None
        return Reservation(amount, day)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        today = self.today()
        keys = [self.day_key(reservation.day or today), self.day_key(today)]
        args = [repr(float(reservation.amount)), repr(float(actual)), BUDGET_TTL_S]
        await self._settle(keys=keys, args=args)

    async def spent_today(self) -> float:
        raw = await self.client.hget(self.day_key(self.today()), "spent")
        return float(raw) if raw is not None else 0.0

    async def reserved_today(self) -> float:
        raw = await self.client.hget(self.day_key(self.today()), "reserved")
        return float(raw) if raw is not None else 0.0


# KEYS[1] the key's holds (a sorted set: member "<id>:<amount>", score = expiry on Redis's clock).
# ARGV: member id, amount, limit, ttl seconds. Returns {1 admitted | 0 refused, held before}.
HOLD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  held = held + tonumber(string.match(member, ':(%d+)$'))
end
local amount, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if held > 0 and held + amount > limit then return {0, held} end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 1)
return {1, held}
"""


class RedisHolds:
    """Amounts held per key by every process sharing one Redis: :meth:`hold` admits an amount
    unless the key already holds something and the sum would pass ``limit`` (a key holding
    nothing is always admitted); :meth:`release` gives it back. A hold expires after ``ttl_s``."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._hold = client.register_script(HOLD_LUA)

    async def hold(
        self, key: str, member: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """(admitted, what the key held before)."""
        args = [member, int(amount), int(limit), float(ttl_s)]
        admitted, held = await self._hold(keys=[self.prefix + key], args=args)
        return bool(int(admitted)), int(held)

    async def release(self, key: str, member: str, amount: int) -> None:
        await self.client.zrem(self.prefix + key, f"{member}:{int(amount)}")


def redis_client(url: str) -> Any:
    """An asyncio Redis client for ``url`` (connections open on first use, in the caller's loop).

    A command whose connection the server closed (Redis restarted) is retried on a new one, up
    to ``RECONNECT_TRIES`` times. A retried script may run twice when the reply alone was lost:
    a reservation or a charge counted twice, never lost. Callers bound each call by their own
    deadline (a frozen Redis answers nothing and closes nothing)."""
    import redis
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), RECONNECT_TRIES)
    return aioredis.Redis.from_url(url, retry=retry, retry_on_error=[redis.ConnectionError])


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Raise ``ConnectionError`` unless Redis at ``url`` answers PING, ``PermissionError`` when
    it refuses this client (no password, or a wrong one) - a blocking check for start-up, before
    any event loop runs."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise PermissionError(f"authentication failed: {exc}") from exc
    except redis.RedisError as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        client.close()
