"""Rate one passage with one rater: cache, retries, strict parsing with one repair, a row.

Every outcome is a row of the ratings table: a valid rating, or a failed one whose ``error``
says why (never dropped, never coerced). ``FatalError`` other than a bad request (e.g. a wrong
API key) is raised instead, because every other call of that rater would fail the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.bias.prompt import PROMPT_VERSION
from assay.bias.rating.task import RatingTask
from assay.bias.ratings import RATINGS_COLUMNS
from assay.llm.cache import Cache
from assay.llm.clock import Clock
from assay.llm.ensemble import Ensemble, RaterConfig
from assay.llm.errors import BadRequestError, FatalError, LLMError, ResponseParseError
from assay.llm.ratelimit import Limiter
from assay.llm.retry import RetryPolicy
from assay.llm.router import ProviderFactory, RaterRouter, sdk_provider
from assay.llm.task import Spent, TaskRunner, retry_policy_for, router_for, task_cache_key
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


class RaterRunner(TaskRunner):
    """One rater rating passages: the transport's task runner plus the cache and the row."""

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
        super().__init__(name, config, router, policy=policy, metrics=metrics, clock=clock)
        self.cache = cache

    def key_for(self, passage_id: Any) -> str:
        return rating_key(passage_id, self.name, self.config.model)

    async def rate(self, passage: Mapping[str, Any]) -> RatingOutcome:
        """Rate ``passage`` (keys passage_id, text, publisher, optional textbook)."""
        task = RatingTask(str(passage["text"]))
        ckey = task_cache_key(self.config, task)
        if self.cache is not None:
            hit = await self.cache.get(ckey)
            if hit is not None:
                self.metrics.cache_hit(self.name)
                row = cached_row(passage, self.name, self.config.model, hit)
                return RatingOutcome(row=row, cached=True, cache_key=ckey)
        spent = Spent()
        try:
            fields = await self._rating_fields(task, spent)
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

    async def _rating_fields(self, task: RatingTask, spent: Spent) -> dict[str, Any]:
        rating, model = await self.ask(task, spent)
        return {
            "score": rating.score,
            "biased": rating.biased,
            "confidence": rating.confidence,
            "explanation": rating.explanation,
            "model": model,
            "error": "",
        }

    def _row(self, passage: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
        return rating_row(passage, self.name, self.config.model, fields)


def rating_cache_key(config: RaterConfig, text: str) -> str:
    """The cache key of a rater's answer to the rating prompt for ``text``."""
    return task_cache_key(config, RatingTask(text))


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


def cached_row(
    passage: Mapping[str, Any], rater: str, model: str, hit: Mapping[str, Any]
) -> dict[str, Any]:
    """The row of a cache hit: the cached answer at no cost (nothing was paid for it, and the
    stored costs are what a budget-limited study has spent)."""
    return rating_row(passage, rater, model, {**hit, "cost": 0.0})


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
    policy = retry_policy_for(ensemble.resilience)
    runners: dict[str, RaterRunner] = {}
    for name in raters or list(ensemble.raters):
        router = router_for(
            ensemble,
            name,
            limiter,
            metrics=metrics,
            clock=clock,
            provider_factory=provider_factory,
        )
        runners[name] = RaterRunner(
            name,
            ensemble.raters[name],
            router,
            policy=policy,
            metrics=metrics,
            cache=cache,
            clock=clock,
        )
    return runners
