"""Circuit breaker per endpoint: closed -> open after N consecutive failures -> half-open probe.

Closed: calls flow; consecutive retryable failures are counted. Open: no call is sent until the
cool-down has passed. Half-open: exactly one probe call is let through; its success closes the
breaker, its failure opens it again for another cool-down.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from assay.llm.clock import Clock, MonotonicClock


class BreakerState(IntEnum):
    """Values match the ``llm_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 15.0,
        clock: Clock | None = None,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock or MonotonicClock()
        self.on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker past its cool-down reads as half-open."""
        if self._state is BreakerState.OPEN and self.retry_in() == 0.0:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self.clock.now())

    def allow(self) -> bool:
        """May a call be sent now? In half-open, only one probe at a time gets True."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        probe_failed = self._state is BreakerState.HALF_OPEN
        self._probe_in_flight = False
        if probe_failed or self._failures >= self.failure_threshold:
            self._opened_at = self.clock.now()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A call let through ended without a verdict (e.g. rate limited): free the probe."""
        self._probe_in_flight = False

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(state)
