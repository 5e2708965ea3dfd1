"""Rate one passage with one rater: cache, retries, strict parsing with one repair, a row.

Every outcome is a row of the ratings table: a valid rating, or a failed one whose ``error``
says why (never dropped, never coerced). ``FatalError`` other than a bad request (e.g. a wrong
API key) is raised instead, because every other call of that rater would fail the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.bias.prompt import PROMPT_VERSION, build_messages, parse_rating, repair_prompt
from assay.bias.ratings import RATINGS_COLUMNS
from assay.llm.cache import Cache, cache_key
from assay.llm.clock import Clock, MonotonicClock
from assay.llm.ensemble import Ensemble, RaterConfig, endpoints_of
from assay.llm.errors import BadRequestError, FatalError, LLMError, ResponseParseError
from assay.llm.ratelimit import Limiter
from assay.llm.retry import RetryPolicy, call_with_retries
from assay.llm.router import ProviderFactory, RaterRouter, sdk_provider
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.llm.usage import cost_usd, estimate_tokens
from assay.obs.metrics_llm import LLMMetrics

MAX_ERROR_CHARS = 300


def rating_key(
    passage_id: Any, rater: str, model: str, prompt_version: str = PROMPT_VERSION
) -> str:
    """Identity of one rating in the store: a rerun or resume skips keys already there."""
    return f"{passage_id}|{rater}|{model}|{prompt_version}"


@dataclass
class RatingOutcome:
    """A row for the ratings store plus what the run accounts for it."""

    row: dict[str, Any]
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    retries: int = 0
    cached: bool = False
    cache_key: str = ""
    metric_events: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fatal: BaseException | None = None  # set instead of a row when the whole run must stop

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.row.get("error")


@dataclass
class _Spent:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    retries: int = 0


class RaterRunner:
    """Everything one rater needs in one process: its router (breakers), limiter, retry policy."""

    def __init__(
        self,
        name: str,
        config: RaterConfig,
        router: RaterRouter,
        *,
        policy: RetryPolicy,
        metrics: LLMMetrics,
        cache: Cache | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.router = router
        self.policy = policy
        self.metrics = metrics
        self.cache = cache
        self.clock = clock or MonotonicClock()

    def key_for(self, passage_id: Any) -> str:
        return rating_key(passage_id, self.name, self.config.model)

    async def rate(self, passage: Mapping[str, Any]) -> RatingOutcome:
        """Rate ``passage`` (keys passage_id, text, publisher, optional textbook)."""
        text = str(passage["text"])
        ckey = rating_cache_key(self.config, text)
        if self.cache is not None:
            hit = await self.cache.get(ckey)
            if hit is not None:
                self.metrics.cache_hit(self.name)
                return RatingOutcome(row=self._row(passage, hit), cached=True, cache_key=ckey)
        spent = _Spent()
        system, user = build_messages(text)
        request = CompletionRequest(
            model=self.config.model,
            prompt=user,
            system=system,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            timeout_s=self.config.timeout_s,
        )
        try:
            fields = await self._rate_with_repair(text, request, spent)
        except (BadRequestError, ResponseParseError) as exc:
            fields = {"error": _error_text(exc)}
        except FatalError:
            raise
        except LLMError as exc:
            fields = {"error": _error_text(exc)}
        fields |= {"tokens": spent.input_tokens + spent.output_tokens, "cost": spent.cost}
        fields.setdefault("latency", spent.latency)
        outcome = RatingOutcome(
            row=self._row(passage, fields),
            calls=spent.calls,
            input_tokens=spent.input_tokens,
            output_tokens=spent.output_tokens,
            cost=spent.cost,
            retries=spent.retries,
            cache_key=ckey,
        )
        if outcome.ok and self.cache is not None:
            await self.cache.set(ckey, cacheable(outcome.row))
        return outcome

    async def _rate_with_repair(
        self, text: str, request: CompletionRequest, spent: _Spent
    ) -> dict[str, Any]:
        response = await self._complete(request, spent)
        try:
            rating = parse_rating(response.text)
        except ResponseParseError as first:
            repair = dataclasses.replace(
                request, prompt=repair_prompt(text, response.text, str(first))
            )
            response = await self._complete(repair, spent)
            try:
                rating = parse_rating(response.text)
            except ResponseParseError as second:
                raise ResponseParseError(f"after one repair retry: {second}") from None
        return {
            "score": rating.score,
            "biased": rating.biased,
            "confidence": rating.confidence,
            "explanation": rating.explanation,
            "model": response.model or self.config.model,
            "error": "",
        }

    async def _complete(self, request: CompletionRequest, spent: _Spent) -> CompletionResponse:
        est = estimate_tokens(request.system, request.prompt) + request.max_tokens

        def on_retry(exc: BaseException) -> None:
            spent.retries += 1
            self.metrics.retry(self.name, getattr(exc, "endpoint_label", "all"))

        tries = 0

        async def attempt() -> CompletionResponse:
            nonlocal tries
            tries += 1
            return await self.router.attempt(request, est, priority=tries - 1)

        response = await call_with_retries(
            attempt,
            self.policy,
            clock=self.clock,
            on_retry=on_retry,
        )
        spent.calls += 1
        spent.input_tokens += response.input_tokens
        spent.output_tokens += response.output_tokens
        spent.latency += response.latency_s
        cost = cost_usd(self.config, response.input_tokens, response.output_tokens)
        spent.cost += cost
        self.metrics.tokens(self.name, "input", response.input_tokens)
        self.metrics.tokens(self.name, "output", response.output_tokens)
        self.metrics.cost(self.name, cost)
        return response

    def _row(self, passage: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
        return rating_row(passage, self.name, self.config.model, fields)

    async def aclose(self) -> None:
        await self.router.aclose()


def rating_cache_key(config: RaterConfig, text: str) -> str:
    """The cache key of a rater's answer to the rating prompt for ``text``."""
    system, user = build_messages(text)
    return cache_key(
        provider=config.provider,
        model=config.model,
        prompt_version=PROMPT_VERSION,
        system=system,
        prompt=user,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


def rating_row(
    passage: Mapping[str, Any], rater: str, model: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A ratings-table row (``RATINGS_COLUMNS`` + ``key``) for one passage and rater."""
    row: dict[str, Any] = dict.fromkeys(RATINGS_COLUMNS)
    row |= {
        "passage_id": passage["passage_id"],
        "publisher": passage.get("publisher"),
        "textbook": passage.get("textbook"),
        "rater": rater,
        "prompt_version": PROMPT_VERSION,
        "model": model,
        "tokens": 0,
        "cost": 0.0,
        "latency": 0.0,
        "error": "",
    }
    row |= {k: v for k, v in fields.items() if k in RATINGS_COLUMNS}
    row["key"] = rating_key(passage["passage_id"], rater, model)
    return row


def cacheable(row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a valid row worth caching (the answer, not the passage's identity)."""
    keep = ("score", "biased", "confidence", "explanation", "model", "tokens", "cost", "latency")
    return {k: row[k] for k in keep}


def _error_text(exc: LLMError) -> str:
    message = f"{exc.reason}: {exc}"
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 3] + "..."


def build_runners(
    ensemble: Ensemble,
    limiter: Limiter,
    *,
    metrics: LLMMetrics,
    cache: Cache | None = None,
    clock: Clock | None = None,
    provider_factory: ProviderFactory = sdk_provider,
    raters: list[str] | None = None,
) -> dict[str, RaterRunner]:
    """One RaterRunner per rater, sharing the limiter, metrics, cache and clock."""
    res = ensemble.resilience
    policy = RetryPolicy(
        max_attempts=res.max_attempts, initial_s=res.backoff_initial_s, max_s=res.backoff_max_s
    )
    runners: dict[str, RaterRunner] = {}
    for name in raters or list(ensemble.raters):
        cfg = ensemble.raters[name]
        router = RaterRouter(
            name,
            endpoints_of(ensemble, name),
            limiter,
            metrics=metrics,
            timeout_s=cfg.timeout_s,
            failure_threshold=res.breaker_failures,
            cooldown_s=res.breaker_cooldown_s,
            max_pause_s=res.max_pause_s,
            clock=clock,
            provider_factory=provider_factory,
        )
        runners[name] = RaterRunner(
            name, cfg, router, policy=policy, metrics=metrics, cache=cache, clock=clock
        )
    return runners
