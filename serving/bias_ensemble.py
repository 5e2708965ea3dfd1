"""The bias scorer's ensemble logic, free of KServe (so it can be tested in any process).

- :func:`usable_ensemble`: drop endpoints (and raters) whose API key is not in the environment.
- :class:`DailySpend` and :func:`unavailable_raters`: the daily budget and open breakers decide
  which raters are not asked at all.
- :func:`aggregate`: the per-passage summary of the raters that answered (the output tensors).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from assay.errors import ConfigError
from assay.obs.logging import get_logger

RATER_PREFIX = "score_"
BIASED_SHARE = 0.5  # share of answering raters that must flag a passage for biased = 1

log = get_logger("serving.bias_scorer")


# ---------------------------------------------------------------------------------------------
# Which raters to ask
# ---------------------------------------------------------------------------------------------


def usable_ensemble(ensemble: Any, environ: Mapping[str, str]) -> tuple[Any, dict[str, str]]:
    """The ensemble restricted to endpoints whose API key is set, and why raters were dropped.

    Returns ``(ensemble or None when no rater is left, {rater: reason})``.
    """
    from assay.llm.ensemble import endpoints_of

    raters: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for name, config in ensemble.raters.items():
        keep = []
        for endpoint, spec in zip(endpoints_of(ensemble, name), config.endpoints, strict=True):
            try:
                endpoint.api_key(environ)
            except ConfigError:
                continue
            keep.append(spec)
        if keep:
            raters[name] = config.model_copy(update={"endpoints": tuple(keep)})
        else:
            needed = sorted({spec.api_key_env for spec in config.endpoints if spec.api_key_env})
            dropped[name] = f"not_configured: API key variable {', '.join(needed)} is not set"
    usable = ensemble.model_copy(update={"raters": raters}) if raters else None
    return usable, dropped


def warm_providers(runtime: Any) -> None:
    """Build every endpoint's SDK client now: importing the SDKs takes seconds, and doing it on
    the first request would stall the event loop (and every request) that long."""
    for name, runner in runtime.runners.items():
        router = runner.router
        for route in router.routes:
            if route.provider is None:
                try:
                    route.provider = router.provider_factory(route.endpoint, router.timeout_s)
                except Exception as exc:  # the first call reports it as this rater's failure
                    log.warning("rater_client_failed", rater=name, error=str(exc))


class DailySpend:
    """LLM metrics that also sum the spend of the current UTC day (for the daily budget)."""

    def __init__(self, inner: Any, today: Any = None) -> None:
        self.inner = inner
        self.today = today or (lambda: datetime.now(UTC).date())
        self.day: date = self.today()
        self.spent_usd = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cost(self, rater: str, usd: float) -> None:
        self.inner.cost(rater, usd)
        self.spent_today()
        self.spent_usd += usd

    def spent_today(self) -> float:
        if self.today() != self.day:
            self.day, self.spent_usd = self.today(), 0.0
        return self.spent_usd


def unavailable_raters(
    runners: Mapping[str, Any], budget_usd: float | None, spent_usd: float
) -> dict[str, str]:
    """Raters not worth asking now, with why: the daily budget is spent, or every endpoint's
    circuit breaker is open (until its cool-down ends; then one probe call goes through)."""
    from assay.llm.breaker import BreakerState

    if budget_usd is not None and spent_usd >= budget_usd:
        reason = f"budget_exceeded: the daily LLM budget of {budget_usd:g} USD is spent"
        return dict.fromkeys(runners, reason)
    skipped = {}
    for name, runner in runners.items():
        breakers = [route.breaker for route in runner.router.routes]
        if all(breaker.state is BreakerState.OPEN for breaker in breakers):
            wait = min(breaker.retry_in() for breaker in breakers)
            skipped[name] = f"circuit_open: the rater failed repeatedly; next try in {wait:.0f} s"
    return skipped


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


@dataclass
class Rated:
    """One passage: each rater's valid rating, and why the others are missing."""

    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def aggregate(rated: Sequence[Rated], raters: Sequence[str]) -> dict[str, np.ndarray]:
    """The output tensors (see the module docstring) for a batch of rated passages."""
    n = len(rated)
    scores = np.full((n, len(raters)), np.nan)
    flags = np.full((n, len(raters)), np.nan)
    confidences = np.full((n, len(raters)), np.nan)
    for row, passage in enumerate(rated):
        for col, rater in enumerate(raters):
            rating = passage.ratings.get(rater)
            if rating is not None:
                scores[row, col] = float(rating["score"])
                flags[row, col] = float(rating["biased"])
                confidences[row, col] = float(rating["confidence"])
    counts = np.sum(~np.isnan(scores), axis=1)
    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        mean = np.nanmean(scores, axis=1)
        std = np.where(counts >= 2, np.nanstd(scores, axis=1, ddof=1), np.nan)
        confidence = np.nanmean(confidences, axis=1)
        share = np.nanmean(flags, axis=1)
    biased = np.where(counts == 0, -1, (share >= BIASED_SHARE).astype(np.int64))
    arrays: dict[str, np.ndarray] = {
        "bias_score": mean.astype(np.float32),
        "score_std": std.astype(np.float32),
        "confidence": confidence.astype(np.float32),
        "biased": biased.astype(np.int64),
        "explanation": _explanations(rated, raters, scores, mean),
        "n_ratings": counts.astype(np.int64),
        "missing_raters": np.array(
            [",".join(r for r in raters if r in p.missing) for p in rated], dtype=object
        ),
    }
    for col, rater in enumerate(raters):
        arrays[RATER_PREFIX + rater] = scores[:, col].astype(np.float32)
    return arrays


@contextlib.contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def _explanations(
    rated: Sequence[Rated], raters: Sequence[str], scores: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    texts = []
    for row, passage in enumerate(rated):
        if np.isnan(mean[row]):
            texts.append("")
            continue
        col = int(np.nanargmin(np.abs(scores[row] - mean[row])))
        rater = raters[col]
        texts.append(f"{rater}: {passage.ratings[rater].get('explanation', '')}")
    return np.array(texts, dtype=object)


def missing_reasons(rated: Sequence[Rated]) -> dict[str, str]:
    """Each missing rater with the first reason it gave in this request."""
    reasons: dict[str, str] = {}
    for passage in rated:
        for rater, why in passage.missing.items():
            reasons.setdefault(rater, why)
    return reasons
