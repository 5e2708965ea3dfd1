"""The shared limits' Redis keys on Redis Cluster, and a Redis that requires a password, against
real redis-servers on 127.0.0.1:

- a one-node Redis Cluster (``--cluster-enabled yes``, owning every slot) refuses a script whose
  keys hash to different slots (CROSSSLOT), as managed Redis in cluster mode does: every Lua
  script the code has runs there, its keys recorded and checked to share one slot
  (``redis.cluster.key_slot``, the CLUSTER KEYSLOT algorithm);
- a redis-server with ``requirepass`` (the manifests' Redis) answers NOAUTH to a client without
  the password; with ASSAY_REDIS_PASSWORD the limiter, the budget, the holds and the cache work.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from redis.cluster import key_slot

from assay.config import Settings, redis_url_with_password
from assay.errors import ConfigError
from assay.llm import redis_limits
from assay.llm.cache import RedisCache
from assay.llm.clock import FakeClock
from assay.llm.redis_limits import RedisBudget, RedisHolds, RedisLimiter, budget_prefix
from assay.llm.shared import require_redis

pytestmark = pytest.mark.redis
KEY = "openai|http://sim/v1|sim-gpt|None"


def _every_script() -> set[str]:
    """Every Lua script the module defines (NOW_LUA is a fragment the timed ones start with)."""
    return {
        value
        for name, value in vars(redis_limits).items()
        if name.endswith("_LUA") and name != "NOW_LUA"
    }


class SlotRecorder:
    """A real asyncio client whose scripts record the keys of every call."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, list[str]]] = []

    def register_script(self, text: str) -> Any:
        script = self.client.register_script(text)

        async def call(keys: list[str], args: list[Any]) -> Any:
            self.calls.append((text, list(keys)))
            return await script(keys=keys, args=args)

        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def _use_every_script(client: Any, cache_url: str) -> None:
    clock = FakeClock()
    limiter = RedisLimiter(client, clock, server_clock=False)
    await limiter.acquire(KEY, rpm=600, tpm=60_000, tokens=100)
    await limiter.pause(KEY, 5)
    await limiter.adjust_tokens(KEY, -40)
    day = [date(2026, 12, 6)]
    budget = RedisBudget(client, 10.0, scope="bias-scorer:caller:alice", today=lambda: day[0])
    reservation = await budget.try_reserve(1.0)
    assert reservation is not None
    day[0] += timedelta(days=1)  # settled after midnight: yesterday's and today's keys together
    await budget.settle(reservation, 0.25)
    assert await budget.spent_today() == pytest.approx(0.25)
    holds = RedisHolds(client, "assay:inflight:bias-scorer:")
    assert (await holds.hold("alice", "req-1", 3, 64, 30.0))[0]
    await holds.release("alice", "req-1", 3)
    cache = RedisCache(cache_url)
    await cache.set("cache-key", {"score": 1.5})
    assert await cache.get("cache-key") == {"score": 1.5}
    await cache.aclose()


async def _recorded(url: str, cache_url: str) -> SlotRecorder:
    """Every script run through a recording client of ``url`` (closed in the same loop)."""
    recorder = SlotRecorder(redis_limits.redis_client(url))
    try:
        await _use_every_script(recorder, cache_url)
    finally:
        await recorder.client.aclose()
    return recorder


def _answer_without_auth(url: str) -> bytes:
    """What the server answers a bare RESP ``SET`` from a client that sent no password."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"SET assay:probe x\r\n")
        return sock.recv(256)


def test_every_script_keeps_its_keys_in_one_slot_on_a_redis_cluster(
    cluster_redis_url: str,
) -> None:
    recorder = asyncio.run(_recorded(cluster_redis_url, cluster_redis_url))
    assert {text for text, _ in recorder.calls} == _every_script(), "a script was not run"
    for text, keys in recorder.calls:
        assert keys, text
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys


def test_the_cluster_refuses_keys_in_two_slots(cluster_redis_url: str) -> None:
    """The fixture behaves as a cluster: the same settle script on two untagged days fails."""
    client = redis.Redis.from_url(cluster_redis_url)
    keys = ["assay:budget:llm:2026-12-06", "assay:budget:llm:2026-12-07"]
    assert key_slot(keys[0].encode()) != key_slot(keys[1].encode())
    try:
        with pytest.raises(redis.ResponseError, match="hash to the same slot"):  # CROSSSLOT
            client.eval(redis_limits.SETTLE_LUA, 2, *keys, "1", "0.5", "60")
    finally:
        client.close()


@pytest.mark.parametrize("scope", ["llm", "bias-scorer", "bias-scorer:caller:alice"])
def test_every_day_of_a_budget_scope_hashes_to_one_slot(scope: str) -> None:
    first = date(2026, 1, 1)
    slots = {
        key_slot(f"{budget_prefix(scope)}{first + timedelta(days=n)}".encode()) for n in range(400)
    }
    assert len(slots) == 1


@pytest.mark.parametrize("scope", ["", "a{b", "}x", "{tag}"])
def test_a_scope_that_would_break_the_hash_tag_is_refused(scope: str) -> None:
    with pytest.raises(ValueError, match="braces"):
        budget_prefix(scope)


def test_a_password_protected_redis_refuses_a_client_without_it(
    password_redis: tuple[str, str],
) -> None:
    url, password = password_redis
    assert _answer_without_auth(url).startswith(b"-NOAUTH Authentication required")
    client = redis.Redis.from_url(url)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.set("assay:probe", "x")
    finally:
        client.close()
    with pytest.raises(ConfigError, match=r"refuses this client.*ASSAY_REDIS_PASSWORD"):
        require_redis(url)
    with pytest.raises(ConfigError, match="refuses this client"):
        require_redis(redis_url_with_password(url, password + "-wrong") or "")


def test_the_limits_budget_holds_and_cache_work_with_the_password(
    password_redis: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, password = password_redis
    monkeypatch.setenv("ASSAY_REDIS_URL", url)
    monkeypatch.setenv("ASSAY_REDIS_PASSWORD", password)
    monkeypatch.delenv("ASSAY_CACHE", raising=False)
    shared = Settings().shared_redis_url
    assert shared is not None and password not in shared  # escaped in the URL
    require_redis(shared)
    recorder = asyncio.run(_recorded(shared, Settings().cache_uri))
    assert {text for text, _ in recorder.calls} == _every_script()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://redis.assay.svc:6379/0", "redis://:p%40ss@redis.assay.svc:6379/0"),
        ("rediss://user@host:6380/1", "rediss://user:p%40ss@host:6380/1"),
        ("redis://:p%40ss@host:6379/0", "redis://:p%40ss@host:6379/0"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2&password=p%40ss"),
    ],
)
def test_the_password_joins_the_url(url: str, expected: str) -> None:
    assert redis_url_with_password(url, "p@ss") == expected
    assert redis_url_with_password(url, None) == url
    assert redis_url_with_password(None, "p@ss") is None


def test_a_url_with_another_password_is_an_error() -> None:
    with pytest.raises(ConfigError, match="set one"):
        redis_url_with_password("redis://:one@host:6379/0", "two")
