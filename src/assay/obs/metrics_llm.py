"""Prometheus metrics of the LLM layer (names agreed in the contracts; labels rater, endpoint).

Code that calls LLMs reports through the small ``LLMMetrics`` interface. In-process (the
bias-scorer server, the fan-out driver) that is ``PrometheusLLMMetrics``; inside Ray workers it is
a ``RecordingMetrics`` whose events travel back with each result and are replayed by the driver,
so one process exports every number.
"""

from __future__ import annotations

from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0)


class LLMMetrics(Protocol):
    def call(self, rater: str, endpoint: str, outcome: str) -> None: ...
    def error(self, rater: str, endpoint: str, reason: str) -> None: ...
    def retry(self, rater: str, endpoint: str) -> None: ...
    def breaker_state(self, rater: str, endpoint: str, state: int) -> None: ...
    def ratelimit_wait(self, rater: str, endpoint: str, seconds: float) -> None: ...
    def cache_hit(self, rater: str) -> None: ...
    def tokens(self, rater: str, direction: str, count: int) -> None: ...
    def cost(self, rater: str, usd: float) -> None: ...
    def latency(self, rater: str, endpoint: str, seconds: float) -> None: ...


class PrometheusLLMMetrics:
    """The ``llm_*`` collectors, registered once per registry."""

    def __init__(self, registry: Any = None) -> None:
        reg = REGISTRY if registry is None else registry
        re = ("rater", "endpoint")
        self.calls = Counter(
            "llm_calls_total", "LLM calls by outcome", [*re, "outcome"], registry=reg
        )
        self.errors = Counter(
            "llm_errors_total", "LLM call errors by reason", [*re, "reason"], registry=reg
        )
        self.retries = Counter("llm_retries_total", "LLM call retries", re, registry=reg)
        self.breaker = Gauge("llm_breaker_state", "0 closed, 1 half-open, 2 open", re, registry=reg)
        self.waits = Histogram(
            "llm_ratelimit_wait_seconds",
            "time spent waiting for the rate limiter",
            re,
            buckets=WAIT_BUCKETS,
            registry=reg,
        )
        self.cache_hits = Counter(
            "llm_cache_hits_total", "ratings served from the cache", ["rater"], registry=reg
        )
        self.token_count = Counter(
            "llm_tokens_total", "tokens used", ["rater", "direction"], registry=reg
        )
        self.cost_usd = Counter(
            "llm_cost_usd_total", "estimated spend in USD", ["rater"], registry=reg
        )
        self.latencies = Histogram(
            "llm_latency_seconds",
            "provider call latency",
            re,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.daily_budget = Gauge(
            "llm_daily_budget_usd", "configured daily LLM budget in USD", registry=reg
        )

    def call(self, rater: str, endpoint: str, outcome: str) -> None:
        self.calls.labels(rater, endpoint, outcome).inc()

    def error(self, rater: str, endpoint: str, reason: str) -> None:
        self.errors.labels(rater, endpoint, reason).inc()

    def retry(self, rater: str, endpoint: str) -> None:
        self.retries.labels(rater, endpoint).inc()

    def breaker_state(self, rater: str, endpoint: str, state: int) -> None:
        self.breaker.labels(rater, endpoint).set(state)

    def ratelimit_wait(self, rater: str, endpoint: str, seconds: float) -> None:
        self.waits.labels(rater, endpoint).observe(seconds)

    def cache_hit(self, rater: str) -> None:
        self.cache_hits.labels(rater).inc()

    def tokens(self, rater: str, direction: str, count: int) -> None:
        if count:
            self.token_count.labels(rater, direction).inc(count)

    def cost(self, rater: str, usd: float) -> None:
        if usd:
            self.cost_usd.labels(rater).inc(usd)

    def latency(self, rater: str, endpoint: str, seconds: float) -> None:
        self.latencies.labels(rater, endpoint).observe(seconds)

    def set_daily_budget(self, usd: float) -> None:
        self.daily_budget.set(usd)


_BY_REGISTRY: dict[int, PrometheusLLMMetrics] = {}


def llm_metrics(registry: Any = None) -> PrometheusLLMMetrics:
    """The metrics bound to ``registry`` (the default Prometheus registry when None)."""
    key = id(registry)
    if key not in _BY_REGISTRY:
        _BY_REGISTRY[key] = PrometheusLLMMetrics(registry)
    return _BY_REGISTRY[key]


class NullMetrics:
    """Discards everything."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class RecordingMetrics:
    """Keeps events as (method, args) so another process can replay them."""

    _METHODS = frozenset(
        {
            "call",
            "error",
            "retry",
            "breaker_state",
            "ratelimit_wait",
            "cache_hit",
            "tokens",
            "cost",
            "latency",
        }
    )

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in self._METHODS:
            raise AttributeError(name)
        return lambda *args: self.events.append((name, args))

    def drain(self) -> list[tuple[str, tuple[Any, ...]]]:
        events, self.events = self.events, []
        return events


def replay(events: list[tuple[str, tuple[Any, ...]]], into: LLMMetrics) -> None:
    for name, args in events:
        getattr(into, name)(*args)
