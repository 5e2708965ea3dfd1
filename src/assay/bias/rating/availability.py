"""Which raters the online scorer asks: API keys set, breakers closed, daily budget left.

- :func:`usable_ensemble`: drop endpoints (and raters) whose API key is not in the environment.
- :func:`unavailable_raters`: raters not worth asking now (budget spent, every breaker open).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.errors import ConfigError
from assay.llm.breaker import BreakerState
from assay.llm.ensemble import Ensemble, endpoints_of


def usable_ensemble(
    ensemble: Ensemble, environ: Mapping[str, str]
) -> tuple[Ensemble | None, dict[str, str]]:
    """The ensemble restricted to endpoints whose API key is set, and why raters were dropped.

    Returns ``(ensemble or None when no rater is left, {rater: reason})``.
    """
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


def budget_exceeded(budget_usd: float) -> str:
    return f"budget_exceeded: the daily LLM budget of {budget_usd:g} USD is spent"


def unavailable_raters(
    runners: Mapping[str, Any], budget_usd: float | None, spent_usd: float
) -> dict[str, str]:
    """Raters not worth asking now, with why: the daily budget is spent, or every endpoint's
    circuit breaker is open (until its cool-down ends; then one probe call goes through)."""
    if budget_usd is not None and spent_usd >= budget_usd:
        return dict.fromkeys(runners, budget_exceeded(budget_usd))
    skipped = {}
    for name, runner in runners.items():
        breakers = [route.breaker for route in runner.router.routes]
        if all(breaker.state is BreakerState.OPEN for breaker in breakers):
            wait = min(breaker.retry_in() for breaker in breakers)
            skipped[name] = f"circuit_open: the rater failed repeatedly; next try in {wait:.0f} s"
    return skipped
