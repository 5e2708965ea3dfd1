"""Run work units on Ray (default) or inline (tests that spy on what each step sees).

``RayExecutor`` keeps at most ``workers`` tasks in flight (a cap that also holds on a shared
cluster), puts large inputs into the object store once, and yields results as they complete.
Results are keyed by the caller, so completion order never changes the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from assay.parallel import init_ray


@dataclass(frozen=True)
class Call:
    key: Hashable
    func: Callable[..., Any]
    args: tuple[Any, ...]


class Executor(Protocol):
    workers: int

    def put(self, value: Any) -> Any: ...

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[Hashable, Any]]:
        """Yield (key, handle-or-value) pairs as calls complete; handles may feed later calls."""
        ...

    def get(self, handle: Any) -> Any: ...


class InlineExecutor:
    """Runs every call in this process, in order. For tests and debugging."""

    workers = 1

    def put(self, value: Any) -> Any:
        return value

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[Hashable, Any]]:
        for call in calls:
            yield call.key, call.func(*call.args)

    def get(self, handle: Any) -> Any:
        return handle


class RayExecutor:
    """Ray tasks (1 CPU each) with a bounded number in flight."""

    def __init__(self, workers: int | None = None) -> None:
        self._ray = init_ray(workers)
        available = int(self._ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers or available, available))
        self._remotes: dict[Callable[..., Any], Any] = {}

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def _remote(self, func: Callable[..., Any]) -> Any:
        if func not in self._remotes:
            self._remotes[func] = self._ray.remote(num_cpus=1, max_retries=0)(func)
        return self._remotes[func]

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[Hashable, Any]]:
        pending = list(calls)[::-1]
        in_flight: dict[Any, Hashable] = {}
        while pending or in_flight:
            while pending and len(in_flight) < self.workers:
                call = pending.pop()
                ref = self._remote(call.func).remote(*call.args)
                in_flight[ref] = call.key
            done, _ = self._ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                key = in_flight.pop(ref)
                self._ray.get(ref)  # surfaces a task's exception here, with its traceback
                yield key, ref

    def get(self, handle: Any) -> Any:
        return self._ray.get(handle)


def make_executor(kind: str, workers: int | None) -> Executor:
    if kind == "inline":
        return InlineExecutor()
    if kind == "ray":
        return RayExecutor(workers)
    raise ValueError(f"unknown executor {kind!r}")
