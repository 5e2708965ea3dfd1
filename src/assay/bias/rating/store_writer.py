"""Appending finished ratings to the store without blocking the fan-out's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from assay.bias.store import BaseRatingsStore


class StoreWriter:
    """Appends finished rows on a worker thread, so fsync never blocks the event loop; rows
    that complete while one batch is being written go out together in the next one."""

    def __init__(self, store: BaseRatingsStore) -> None:
        self.store = store
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain())

    def put(self, row: dict[str, Any]) -> None:
        self._queue.put_nowait(row)

    async def close(self) -> None:
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task

    async def _drain(self) -> None:
        finished = False
        while not finished:
            first = await self._queue.get()
            batch = [] if first is None else [first]
            finished = first is None
            while not finished and not self._queue.empty():
                row = self._queue.get_nowait()
                finished = row is None
                if row is not None:
                    batch.append(row)
            if batch:
                await asyncio.to_thread(self.store.append, batch)
