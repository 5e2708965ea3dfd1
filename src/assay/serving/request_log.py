"""Request logs: one structlog line per request at debug, a sample of them at info."""

from __future__ import annotations

from typing import Any

from assay.obs.logging import get_logger


class RequestLog:
    """One JSON line per request at debug level; every ``sample_every``-th request at info.

    Callers pass counts and timings only, never feature values (they are patient data).
    """

    def __init__(self, logger_name: str, *, debug: bool, sample_every: int) -> None:
        self.log = get_logger(logger_name)
        self.debug = debug
        self.sample_every = max(1, sample_every)
        self._count = 0

    def request(self, **fields: Any) -> None:
        self._count += 1
        if self.debug:
            self.log.debug("inference_request", **fields)
        elif self._count % self.sample_every == 0:
            self.log.info("inference_request", sampled_1_in=self.sample_every, **fields)


def sample_every_from_rate(rate: float) -> int:
    """0.01 -> log 1 request in 100 at info; 0 disables sampled info lines (in practice)."""
    return 10**9 if rate <= 0 else max(1, round(1 / min(rate, 1.0)))
