"""The local (no-Ray) path: rate ONE passage with every rater, in this process.

The bias-scorer server builds one ``EnsembleRuntime`` at load time and awaits
``score_passage`` per request; the limiter buckets, breakers, SDK clients, retry policy and cache
live in the runtime and are shared by every request the server handles. With a ``Budget`` (the
server's daily one, local or Redis-shared), each rater's worst-case cost is reserved before it is
asked and settled at the rating's actual cost, or at the reservation when it did not finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from typing import Any

from assay.bias.rating.rater import RaterRunner, build_runners
from assay.bias.rating.task import RatingTask
from assay.llm.cache import Cache, MemoryCache
from assay.llm.clock import Clock
from assay.llm.ensemble import Endpoint, Ensemble
from assay.llm.errors import FatalError
from assay.llm.ratelimit import Limiter, LocalLimiter, bank_for
from assay.llm.router import ProviderFactory, sdk_provider
from assay.llm.usage import Budget, Spending, as_spending, charged, worst_case_cost
from assay.obs.logging import get_logger
from assay.obs.metrics_llm import LLMMetrics, llm_metrics

log = get_logger(__name__)


@dataclass
class PassageScore:
    """Per-rater results for one passage: valid ratings, and why the other raters are missing."""

    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        return {rater: float(row["score"]) for rater, row in self.ratings.items()}


class EnsembleRuntime:
    """Long-lived, in-process rating machinery for one ensemble (use ``async with`` or aclose)."""

    def __init__(
        self,
        ensemble: Ensemble,
        *,
        cache: Cache | None = None,
        metrics: LLMMetrics | None = None,
        clock: Clock | None = None,
        provider_factory: ProviderFactory = sdk_provider,
        limiter: Limiter | None = None,
    ) -> None:
        self.ensemble = ensemble
        self.cache = cache if cache is not None else MemoryCache()
        self.metrics = metrics or llm_metrics()
        self.limiter = limiter or LocalLimiter(bank_for(ensemble.resilience, clock))
        self.runners: dict[str, RaterRunner] = build_runners(
            ensemble,
            self.limiter,
            metrics=self.metrics,
            cache=self.cache,
            clock=clock,
            provider_factory=provider_factory,
        )

    def warm(self) -> None:
        """Build every endpoint's SDK client now: importing the SDKs takes seconds, and doing it
        on the first request would stall the event loop (and every request) that long. A client
        that cannot be built is logged; the rater's first call reports it as its failure."""
        for name, runner in self.runners.items():

            def report(endpoint: Endpoint, exc: Exception, rater: str = name) -> None:
                log.warning("rater_client_failed", rater=rater, error=str(exc))

            runner.router.warm(on_error=report)

    async def aclose(self) -> None:
        for runner in self.runners.values():
            await runner.aclose()

    async def __aenter__(self) -> EnsembleRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def score_passage(
    text: str,
    runtime: EnsembleRuntime,
    *,
    passage_id: str = "request",
    publisher: str | None = None,
    deadline_s: float | None = None,
    raters: Collection[str] | None = None,
    budget: Budget | Spending | None = None,
) -> PassageScore:
    """Ask every rater of ``runtime`` (or only those named in ``raters``) about ``text``
    concurrently.

    A rater that fails (after its retries and one repair), raises a fatal error, misses
    ``deadline_s`` or does not fit in ``budget`` (its worst-case cost is reserved before it is
    asked) is listed in ``missing`` with its reason; it never fails the whole passage.
    """
    passage = {"passage_id": passage_id, "text": text, "publisher": publisher}
    result = PassageScore()
    task = RatingTask(text)
    spending = as_spending(budget) if budget is not None else None

    async def rating_of(runner: RaterRunner) -> Any:
        if deadline_s is None:
            return await runner.rate(passage)
        return await asyncio.wait_for(runner.rate(passage), timeout=deadline_s)

    async def one(name: str, runner: RaterRunner) -> None:
        if spending is None:
            await ask(name, rating_of(runner))
            return
        worst = worst_case_cost(runner.config, task.system, task.prompt)
        try:
            reservation = await spending.try_reserve(worst)
        except Exception as exc:  # a shared budget that cannot be read: fail closed
            result.missing[name] = f"error: the LLM budget cannot be checked ({exc})"
            return
        if reservation is None:
            result.missing[name] = (
                "budget_exceeded: its worst-case cost does not fit in what is left of the "
                f"LLM budget of {spending.limit_usd or 0.0:g} USD"
            )
            return
        await ask(name, charged(spending, reservation, rating_of(runner), _cost))

    async def ask(name: str, rating: Awaitable[Any]) -> None:
        try:
            outcome = await rating
        except TimeoutError:
            result.missing[name] = f"timeout: no rating within {deadline_s:g} s"
            return
        except FatalError as exc:
            result.missing[name] = f"{exc.reason}: {exc}"
            return
        except Exception as exc:  # e.g. an endpoint's API key is not set: only this rater fails
            result.missing[name] = f"{type(exc).__name__}: {exc}"
            return
        if outcome.ok:
            result.ratings[name] = outcome.row
        else:
            result.missing[name] = str(outcome.row["error"])

    chosen = runtime.runners if raters is None else {n: runtime.runners[n] for n in raters}
    await asyncio.gather(*(one(name, r) for name, r in chosen.items()))
    return result


def _cost(outcome: Any) -> float:
    return float(outcome.cost)
