"""Reload a model without restarting: a :class:`Reloader` owns the source, its fingerprint and
the loaded version, and swaps in a new version only once it is completely loaded and checked.

The swap is one reference assignment, so requests in flight finish on the version they started
with and none fail; a model reads :attr:`Reloader.current` once per model call.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from assay.obs.logging import get_logger

V = TypeVar("V")


class Source(Protocol):
    """Where versions come from; the fingerprint changes when a new version is there."""

    def fingerprint(self) -> str: ...


class Reloader(Generic[V]):
    """Loads the version a source points to, and again whenever its fingerprint changes.

    ``open_source`` re-reads the configuration (the URI) into a :class:`Source`; ``load`` turns a
    source into a loaded, checked version; ``on_swap(new, previous)`` runs after each swap.
    Triggers: :meth:`reload` (e.g. the v2 repository ``load`` call), SIGHUP, and polling.
    """

    def __init__(
        self,
        open_source: Callable[[], Source],
        load: Callable[[Any], V],
        on_swap: Callable[[V, V | None], None],
        logger_name: str = "serving.reload",
    ) -> None:
        self.log = get_logger(logger_name)
        self._open_source = open_source
        self._load = load
        self._on_swap = on_swap
        self._source: Source | None = None
        self._fingerprint: str | None = None
        self._current: V | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def current(self) -> V | None:
        """The version serving now (None before the first load)."""
        return self._current

    def load_now(self) -> V:
        """Load the source's version synchronously (start-up, or a fresh worker process)."""
        source = self._open_source()
        fingerprint = source.fingerprint()
        loaded = self._load(source)
        self._source, self._fingerprint = source, fingerprint
        self._swap(loaded)
        return loaded

    async def reload(self) -> bool:
        """Load the version the source points to now, if it changed; True when swapped."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            source = self._source or self._open_source()
            fingerprint = await asyncio.to_thread(source.fingerprint)
            if fingerprint == self._fingerprint and self._current is not None:
                return False
            loaded = await asyncio.to_thread(self._load, source)
            self._source, self._fingerprint = source, fingerprint
            self._swap(loaded)
            return True

    def _swap(self, loaded: V) -> None:
        previous, self._current = self._current, loaded
        self._on_swap(loaded, previous)

    def watch(self, interval_s: float) -> None:
        """In the running event loop: reload on SIGHUP, and every ``interval_s`` seconds if > 0."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._spawn, "signal")
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / OS
            self.log.warning("sighup_reload_unavailable")
        if interval_s > 0:
            self._keep(loop.create_task(self._poll(interval_s)))

    def _spawn(self, trigger: str) -> None:
        self._keep(asyncio.get_running_loop().create_task(self._reload_logged(trigger)))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self._reload_logged("poll")

    async def _reload_logged(self, trigger: str) -> None:
        try:
            await self.reload()
        except Exception as exc:
            self.log.error("reload_failed", trigger=trigger, error=str(exc))

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
