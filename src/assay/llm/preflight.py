"""Checks made before any paid call: keys, models, worst-case cost and the shortest duration.

A caller (the bias-study command, the bias scorer's start-up) loads its ensemble, then runs
:func:`check_keys` and :func:`check_models` (each raises :class:`ConfigError`, exit 2, with one
sentence) and :func:`plan_calls` for what the work can cost and how long it must take at the
configured limits. Nothing here spends money: the models endpoints are free listings.

Model check, per rater: the provider's models endpoint (``GET .../v1/models``) when it answers
decides; when it cannot be reached, the installed SDK's own list of model ids decides where the
SDK ships one (openai ``ChatModel``, anthropic ``Model``); without either, the model is noted as
unverified.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import httpx

from assay.errors import ConfigError
from assay.llm.ensemble import Endpoint, Ensemble, RaterConfig, endpoints_of
from assay.llm.usage import estimate_tokens, worst_case_cost

MAX_TERMS_AGE_DAYS = 180
"""Prices and limits recorded longer ago than this are flagged for a re-check."""
MODELS_TIMEOUT_S = 5.0
DEFAULT_API_ROOTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "together": "https://api.together.xyz",
}
ModelLister = Callable[[Endpoint, str | None], frozenset[str]]
"""Lists the models an endpoint offers, given its key; raises ``OSError`` when unreachable."""


class ModelsEndpointUnreachable(OSError):
    """The models endpoint did not answer (no network, DNS, refused, timeout, 5xx)."""


@dataclass(frozen=True)
class RaterPlan:
    """What one rater's share of the work costs at most and takes at least."""

    rater: str
    calls: int
    worst_case_usd: float
    min_minutes: float


@dataclass(frozen=True)
class Plan:
    raters: tuple[RaterPlan, ...]

    @property
    def worst_case_usd(self) -> float:
        return sum(r.worst_case_usd for r in self.raters)

    @property
    def min_minutes(self) -> float:
        """Raters run side by side: the slowest one bounds the run."""
        return max((r.min_minutes for r in self.raters), default=0.0)


def check_keys(ensemble: Ensemble, environ: Mapping[str, str]) -> None:
    """ConfigError naming the first rater whose key variable is unset or empty."""
    for rater in ensemble.raters:
        for endpoint in endpoints_of(ensemble, rater):
            endpoint.api_key(environ)


def check_models(
    ensemble: Ensemble,
    environ: Mapping[str, str],
    lister: ModelLister | None = None,
    *,
    strict: bool = True,
) -> list[str]:
    """ConfigError for the first model that does not exist; returns notes for the models that
    could only be checked against the SDK's list or not at all. ``strict=False`` (a server that
    may start before its endpoints): an unreachable endpoint is only a note."""
    list_models = lister or list_endpoint_models
    notes: list[str] = []
    for rater, cfg in ensemble.raters.items():
        endpoint = endpoints_of(ensemble, rater)[0]
        try:
            note = _check_one(rater, cfg, endpoint, endpoint.api_key(environ), list_models)
        except UnverifiedModel as exc:
            if strict:
                raise ConfigError(str(exc)) from None
            note = str(exc).rstrip(".")
        if note:
            notes.append(note)
    return notes


class UnverifiedModel(Exception):
    """Neither the endpoint nor the SDK's own list could confirm a model."""


def _check_one(
    rater: str, cfg: RaterConfig, endpoint: Endpoint, key: str | None, lister: ModelLister
) -> str | None:
    where = endpoint.base_url or DEFAULT_API_ROOTS[cfg.provider]
    try:
        offered = lister(endpoint, key)
    except ModelsEndpointUnreachable as exc:
        known = sdk_model_ids(cfg.provider)
        if known is None:
            return f"rater {rater!r}: model {cfg.model} not verified ({where} unreachable: {exc})"
        if cfg.model not in known:
            raise UnverifiedModel(
                f"rater {rater!r}: model {cfg.model!r} is not in the installed {cfg.provider} "
                f"SDK's model list and {where} could not be asked ({exc})."
            ) from None
        return (
            f"rater {rater!r}: {where} unreachable; {cfg.model} is in the {cfg.provider} SDK's list"
        )
    if cfg.model not in offered:
        sample = ", ".join(sorted(offered)[:5]) or "none"
        raise ConfigError(
            f"rater {rater!r}: model {cfg.model!r} is not offered at {where} "
            f"({len(offered)} models listed, e.g. {sample})."
        )
    return None


def sdk_model_ids(provider: str) -> frozenset[str] | None:
    """The model ids the installed SDK lists in its own types, or None if it lists none."""
    if provider == "openai":
        from openai.types.shared.chat_model import ChatModel

        return frozenset(typing.get_args(ChatModel))
    if provider == "anthropic":
        from anthropic.types.model import Model

        return frozenset(
            arg for part in typing.get_args(Model) for arg in typing.get_args(part) if arg
        )
    return None


def list_endpoint_models(endpoint: Endpoint, key: str | None) -> frozenset[str]:
    """The model ids ``GET <root>/v1/models`` lists (OpenAI, Anthropic and Together formats)."""
    root = (endpoint.base_url or DEFAULT_API_ROOTS[endpoint.provider]).rstrip("/")
    url = root + "/models" if root.endswith("/v1") else root + "/v1/models"
    headers = {"anthropic-version": "2023-06-01"} if endpoint.provider == "anthropic" else {}
    if key:
        headers.update({"x-api-key": key, "Authorization": f"Bearer {key}"})
    try:
        response = httpx.get(url, headers=headers, params={"limit": 1000}, timeout=MODELS_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ModelsEndpointUnreachable(type(exc).__name__) from None
    if response.status_code in (401, 403):
        raise ConfigError(
            f"rater {endpoint.rater!r}: {root} refused the key in {endpoint.api_key_env} "
            f"(HTTP {response.status_code})."
        )
    if response.status_code >= 400:
        raise ModelsEndpointUnreachable(f"HTTP {response.status_code}")
    return frozenset(_model_ids(response.json()))


def _model_ids(body: object) -> Iterable[str]:
    items = body.get("data", []) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]


def plan_calls(ensemble: Ensemble, calls: Sequence[tuple[str, str]]) -> Plan:
    """Worst-case cost and shortest duration of every rater making ``calls`` ((system, prompt)
    each): every call at ``max_tokens`` out plus one repair call, no cache hit; the duration at
    the rater's rpm/tpm summed over its endpoints, ignoring latency."""
    plans = []
    for rater, cfg in ensemble.raters.items():
        endpoints = endpoints_of(ensemble, rater)
        cost = sum(worst_case_cost(cfg, system, prompt) for system, prompt in calls)
        rpm = sum(e.rpm for e in endpoints)
        minutes = len(calls) / rpm
        if all(e.tpm for e in endpoints):
            tokens = sum(estimate_tokens(s, p) + cfg.max_tokens for s, p in calls)
            minutes = max(minutes, tokens / sum(e.tpm or 0 for e in endpoints))
        plans.append(RaterPlan(rater, len(calls), cost, minutes))
    return Plan(tuple(plans))


def stale_terms(
    ensemble: Ensemble, today: date, max_age_days: int = MAX_TERMS_AGE_DAYS
) -> list[str]:
    """A note for every paid rater whose prices and limits are undated or older than
    ``max_age_days``."""
    notes = []
    for rater, cfg in ensemble.raters.items():
        if cfg.price_per_1k_input == 0 and cfg.price_per_1k_output == 0:
            continue
        terms = cfg.terms
        if terms is None:
            notes.append(f"rater {rater!r}: prices and limits carry no date or source")
            continue
        if terms.as_of is None:  # illustrative, nothing is charged
            continue
        age = (today - terms.as_of).days
        if age > max_age_days:
            notes.append(
                f"rater {rater!r}: prices and limits recorded {terms.as_of.isoformat()} "
                f"({age} days ago); check {terms.source}"
            )
    return notes


def describe_minutes(minutes: float) -> str:
    if minutes < 1:
        return f"{math.ceil(minutes * 60)} s"
    if minutes < 120:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.1f} h"
