"""Prometheus metrics of the inference servers (classifier and bias scorer).

The names and labels are a contract with the alert rules in ``manifests/``: keep them.

- ``predictions_total{model,version,prediction}``  rows predicted, by predicted label
- ``prediction_latency_seconds``                   histogram of request latency inside the model
- ``model_confidence``                             histogram of per-row confidence (0.5 ... 1.0)
- ``inference_errors_total{reason}``               rejected or failed requests, by reason
- ``model_info{model,version,estimator,threshold}`` 1 for the model version being served

Nothing is registered at import time: call :func:`serving_metrics` (one set per registry).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# Milliseconds for the classifier, up to the gateway's 120 s for the bias scorer (which waits on
# LLM APIs); each server's latency alert threshold (0.1 s, 30 s) is a bucket bound.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0, 120.0)  # fmt: skip
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BIAS_SCORE_BUCKETS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class ServingMetrics:
    predictions: Counter
    latency: Histogram
    confidence: Histogram
    errors: Counter
    model_info: Gauge

    def set_model_info(
        self, model: str, version: str, estimator: str, threshold: float, previous: Any = None
    ) -> tuple[str, str, str, str]:
        """Point ``model_info`` at the served version (dropping ``previous`` label values)."""
        if previous is not None:
            with contextlib.suppress(KeyError):
                self.model_info.remove(*previous)
        labels = (model, version, estimator, f"{threshold:.6g}")
        self.model_info.labels(*labels).set(1)
        return labels

    def count_error(self, reason: str) -> None:
        self.errors.labels(reason=reason).inc()


@dataclass(frozen=True)
class BiasScorerMetrics:
    """The bias scorer's extra series (it also uses :class:`ServingMetrics`)."""

    rater_score: Histogram
    rater_unavailable: Counter
    caller_spend: Counter
    caller_refused: Counter


_lock = threading.Lock()
# Keyed by the registry object itself, weakly: an id() key outlives its registry and can be
# handed to a new registry that reuses the address.
_serving: weakref.WeakKeyDictionary[CollectorRegistry, ServingMetrics] = weakref.WeakKeyDictionary()
_bias: weakref.WeakKeyDictionary[CollectorRegistry, BiasScorerMetrics] = weakref.WeakKeyDictionary()


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry

    return REGISTRY


def serving_metrics(registry: CollectorRegistry | None = None) -> ServingMetrics:
    """The serving metrics registered on ``registry`` (default: the process registry), once."""

    reg = _registry(registry)
    with _lock:
        if reg not in _serving:
            _serving[reg] = ServingMetrics(
                predictions=Counter(
                    "predictions",
                    "Rows predicted, by model, model version and predicted label.",
                    ["model", "version", "prediction"],
                    registry=reg,
                ),
                latency=Histogram(
                    "prediction_latency_seconds",
                    "Time from a validated request to its response inside the model server.",
                    buckets=LATENCY_BUCKETS,
                    registry=reg,
                ),
                confidence=Histogram(
                    "model_confidence",
                    "Per-row confidence of the served model (max(p, 1 - p) for the classifier).",
                    buckets=CONFIDENCE_BUCKETS,
                    registry=reg,
                ),
                errors=Counter(
                    "inference_errors",
                    "Requests rejected or failed, by reason.",
                    ["reason"],
                    registry=reg,
                ),
                model_info=Gauge(
                    "model_info",
                    "1 for the model version being served.",
                    ["model", "version", "estimator", "threshold"],
                    registry=reg,
                ),
            )
        return _serving[reg]


def bias_scorer_metrics(registry: CollectorRegistry | None = None) -> BiasScorerMetrics:
    """The bias scorer's rater series on ``registry`` (default: the process registry), once."""

    reg = _registry(registry)
    with _lock:
        if reg not in _bias:
            _bias[reg] = BiasScorerMetrics(
                rater_score=Histogram(
                    "bias_rater_score",
                    "Bias scores (-2 ... +2) returned by each rater.",
                    ["rater"],
                    buckets=BIAS_SCORE_BUCKETS,
                    registry=reg,
                ),
                rater_unavailable=Counter(
                    "bias_rater_unavailable",
                    "Requests a rater could not answer (error, open breaker, budget).",
                    ["rater"],
                    registry=reg,
                ),
                caller_spend=Counter(
                    "bias_scorer_caller_spend_usd",
                    "USD spent on the raters for each caller (ids from the caller key file).",
                    ["caller"],
                    registry=reg,
                ),
                caller_refused=Counter(
                    "bias_scorer_caller_refused",
                    "Requests refused before rating, by caller and the limit or check that "
                    "refused them (unauthenticated, revoked, caller_daily_budget, caller_queue).",
                    ["caller", "limit"],
                    registry=reg,
                ),
            )
        return _bias[reg]


def observe_many(histogram: Histogram, values: Sequence[float] | Any) -> None:
    """Observe every value of a (numpy) array in one pass instead of one lock per value.

    Uses prometheus_client's per-bucket values (non-cumulative counts plus a sum); falls back
    to one ``observe`` per value if that layout ever changes.
    """

    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        return
    try:
        bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
        buckets, total = histogram._buckets, histogram._sum
    except AttributeError:  # pragma: no cover - depends on prometheus_client internals
        for value in array:
            histogram.observe(float(value))
        return
    counts = np.bincount(np.searchsorted(bounds, array, side="left"), minlength=len(bounds))
    for index, count in enumerate(counts[: len(bounds)]):
        if count:
            buckets[index].inc(int(count))
    total.inc(float(array.sum()))
