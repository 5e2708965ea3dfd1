"""Adaptive batching: concurrent requests share one model call (free of KServe)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    size: int
    future: asyncio.Future[R] = field(repr=False)


class AdaptiveBatcher(Generic[T, R]):
    """Gathers items submitted concurrently and hands them to ``run_batch`` in one call.

    Adaptive: a batch is whatever queued up while the previous call ran (nothing waits when the
    server is idle), optionally topped up for ``max_wait_s``, and capped at ``max_batch_size``
    (the sum of the items' sizes; one item over the cap still runs, alone). ``run_batch`` gets
    the items in order and returns one result per item; it runs on the event loop, or in the
    default thread pool with ``in_thread=True`` (for calls long enough to stall the loop).
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_wait_s: float = 0.0,
        in_thread: bool = False,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.in_thread = in_thread
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T, size: int = 1) -> R:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, size, future))
        return await future

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def _work(self, queue: asyncio.Queue[_Pending[T, R]]) -> None:
        while True:
            batch = await self._collect(queue)
            await self._execute(batch)

    async def _collect(self, queue: asyncio.Queue[_Pending[T, R]]) -> list[_Pending[T, R]]:
        batch = [await queue.get()]
        size = batch[0].size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            if queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                pending = queue.get_nowait()
            if size + pending.size > self.max_batch_size:
                queue.put_nowait(pending)  # goes to the back; fine for a rare oversize item
                break
            batch.append(pending)
            size += pending.size
        return batch

    async def _execute(self, batch: list[_Pending[T, R]]) -> None:
        live = [pending for pending in batch if not pending.future.done()]
        if not live:
            return
        items = [pending.item for pending in live]
        try:
            if self.in_thread:
                results = await asyncio.get_running_loop().run_in_executor(
                    None, self.run_batch, items
                )
            else:
                results = self.run_batch(items)
        except Exception as exc:  # every caller of the batch gets the failure
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(live)
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
