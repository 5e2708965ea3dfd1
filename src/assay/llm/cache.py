"""Response cache keyed by (provider, model, prompt version, prompt text hash, temperature,
max tokens). In memory by default; Redis with a TTL when ``ASSAY_CACHE=redis://...``, or when
``ASSAY_CACHE`` is unset/memory and ``ASSAY_REDIS_URL`` (the shared limits' Redis) is set.

Only valid, parsed ratings are cached, as small JSON dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any, Protocol

from assay.config import Settings
from assay.errors import ConfigError
from assay.llm.redis_limits import redis_client


def cache_key(
    *,
    provider: str,
    model: str,
    prompt_version: str,
    system: str,
    prompt: str,
    temperature: float,
    max_tokens: int,
) -> str:
    text_hash = hashlib.sha256(f"{system}\x00{prompt}".encode()).hexdigest()
    parts = [provider, model, prompt_version, text_hash, f"{temperature:g}", str(max_tokens)]
    return "assay:llm:" + hashlib.sha256("|".join(parts).encode()).hexdigest()


class Cache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def set(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryCache:
    """A bounded LRU dict in this process."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, str] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = self._data.get(key)
        if raw is None:
            return None
        self._data.move_to_end(key)
        value: dict[str, Any] = json.loads(raw)
        return value

    async def set(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = json.dumps(value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class RedisCache:
    """Redis (``redis.asyncio``) with a TTL; entries are shared by every process of a run."""

    def __init__(self, url: str, ttl_s: int = 7 * 24 * 3600) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self._client = redis_client(url)  # reconnects after a Redis restart

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._client.get(key)
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def set(self, key: str, value: dict[str, Any]) -> None:
        await self._client.set(key, json.dumps(value), ex=self.ttl_s)

    async def aclose(self) -> None:
        await self._client.aclose()


def open_cache(uri: str | None = None, ttl_s: int = 7 * 24 * 3600) -> MemoryCache | RedisCache:
    """``memory://`` (default) or ``redis://host:port/db`` (``rediss://`` too)."""
    if uri is None:
        uri = Settings().cache_uri
    if uri in ("", "memory", "memory://"):
        return MemoryCache()
    if uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisCache(uri, ttl_s=ttl_s)
    raise ConfigError(f"ASSAY_CACHE={uri!r}: use memory:// or redis://host:port/db")
