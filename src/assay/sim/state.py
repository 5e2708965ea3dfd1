"""Server-side bookkeeping: per-model rolling-window rate limits, request statistics and the
attempt number of every (model, passage).

The attempt number of a request is how many requests for the same (model, passage key) were
*admitted* before it (0 for the first). Requests the rolling rpm window rejects are not counted,
because whether a request is rejected depends on the clock; a client's retries of one passage are
sequential, so the count - and everything the simulator derives from it - does not depend on
arrival order, concurrency or timing. ``reset`` zeroes the counts with the statistics.

All methods run on the server's event loop thread, so no locking is needed.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_ARRIVALS = 100_000
"""Arrival times kept per model (seconds since start, every request received, newest last)."""


class RollingWindow:
    """At most ``limit`` admissions in any window of ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._admitted: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._admitted and now - self._admitted[0] >= self.window_s:
            self._admitted.popleft()

    def try_admit(self, now: float) -> float | None:
        """Admit and return None, or return the seconds until a slot frees."""
        self._expire(now)
        if len(self._admitted) >= self.limit:
            return self.window_s - (now - self._admitted[0])
        self._admitted.append(now)
        return None

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - len(self._admitted))

    def reset_in(self, now: float) -> float:
        self._expire(now)
        return self.window_s - (now - self._admitted[0]) if self._admitted else 0.0

    def in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._admitted)


@dataclass
class ModelStats:
    received: int = 0
    admitted: int = 0
    answered: int = 0
    violations: int = 0
    refusals: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    peak_window_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    timeline_requests: Counter[int] = field(default_factory=Counter)
    timeline_violations: Counter[int] = field(default_factory=Counter)
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_ARRIVALS))

    def as_dict(self) -> dict[str, Any]:
        seconds = sorted(set(self.timeline_requests) | set(self.timeline_violations))
        return {
            "received": self.received,
            "admitted": self.admitted,
            "answered": self.answered,
            "violations": self.violations,
            "refusals": self.refusals,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "peak_window_requests": self.peak_window_requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "faults": dict(sorted(self.faults.items())),
            "timeline": [
                {
                    "second": s,
                    "requests": self.timeline_requests[s],
                    "violations": self.timeline_violations[s],
                }
                for s in seconds
            ],
            "arrivals_s": [round(t, 4) for t in self.arrivals],
        }


class SimState:
    """Rate-limit windows and statistics of every simulated model."""

    def __init__(
        self,
        limits: dict[str, int | None],
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.window_s = window_s
        self._limits = limits
        self.reset()

    def reset(self) -> None:
        self.started = self.clock()
        self.windows = {
            name: RollingWindow(limit, self.window_s)
            for name, limit in self._limits.items()
            if limit is not None
        }
        self.models: dict[str, ModelStats] = {name: ModelStats() for name in self._limits}
        self.attempts: Counter[tuple[str, str]] = Counter()

    def _second(self, now: float) -> int:
        return int(now - self.started)

    def receive(self, model: str) -> float | None:
        """Count a request; None if admitted, else the wait in seconds (a counted violation)."""
        now = self.clock()
        stats = self.models[model]
        stats.received += 1
        stats.arrivals.append(now - self.started)
        window = self.windows.get(model)
        wait = window.try_admit(now) if window else None
        if wait is not None:
            stats.violations += 1
            stats.timeline_violations[self._second(now)] += 1
            return wait
        stats.admitted += 1
        stats.timeline_requests[self._second(now)] += 1
        if window:
            stats.peak_window_requests = max(stats.peak_window_requests, window.in_window(now))
        return None

    def next_attempt(self, model: str, passage_key: str) -> int:
        """The attempt number of an admitted request for (model, passage key), counting it:
        0 for the first admitted request, 1 for the next, ..."""
        attempt = self.attempts[(model, passage_key)]
        self.attempts[(model, passage_key)] = attempt + 1
        return attempt

    def limit_headers(self, model: str) -> dict[str, int | float]:
        """(limit, remaining, reset seconds) of the model's window, empty when unlimited."""
        window = self.windows.get(model)
        if window is None:
            return {}
        now = self.clock()
        return {
            "limit": window.limit,
            "remaining": window.remaining(now),
            "reset_s": window.reset_in(now),
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime_s": round(self.clock() - self.started, 3),
            "window_s": self.window_s,
            "limits_rpm": dict(self._limits),
            "models": {name: stats.as_dict() for name, stats in self.models.items()},
        }
