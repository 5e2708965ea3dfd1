"""Console progress of a local run: one line per pipeline task, as kfp.local starts and ends it.

A task that reports work units (``UnitCounter``: a total and a way to count the finished ones)
gets a bar polled from this process while it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@dataclass(frozen=True)
class UnitCounter:
    total: int
    done: Callable[[], int]


class StepProgress:
    """``with StepProgress(console, titles) as steps: run_locally(job, out, steps.on_task)``."""

    def __init__(
        self,
        console: Console,
        titles: Mapping[str, str],
        counters: Mapping[str, UnitCounter] | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self._titles = titles
        self._counters = dict(counters or {})
        self._poll_s = poll_s
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._bars: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def __enter__(self) -> StepProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop_polling()
        self._progress.stop()

    def on_task(self, event: str, name: str) -> None:
        title = self._titles.get(name, name)
        counter = self._counters.get(name)
        if event == "start":
            total = counter.total if counter else 1
            self._totals[name] = total
            self._bars[name] = self._progress.add_task(title, total=total)
            if counter:
                self._start_polling(self._bars[name], counter)
        elif name in self._bars:
            if counter:
                self._stop_polling()
            bar = self._bars[name]
            self._progress.update(bar, completed=self._totals[name], description=f"[green]{title}")

    def _start_polling(self, bar: TaskID, counter: UnitCounter) -> None:
        self._stop.clear()

        def poll() -> None:
            while not self._stop.wait(self._poll_s):
                self._progress.update(bar, completed=min(counter.done(), counter.total))

        self._poller = threading.Thread(target=poll, name="unit-progress", daemon=True)
        self._poller.start()

    def _stop_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
