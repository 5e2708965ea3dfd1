"""The bias scorer's raters: the ensemble loaded once per process, and one passage rated by every
rater that can answer now (API key present, breaker not open, daily budget not spent).

With ``redis_url`` the rate limits, the daily budget and the cache are shared through that Redis
by every replica (checked at load: an unreachable Redis fails the start); without it they are
this process's own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from assay.bias.prompt import PROMPT_VERSION
from assay.bias.rating.availability import unavailable_raters, usable_ensemble
from assay.bias.rating.scorer import EnsembleRuntime, PassageScore, score_passage
from assay.config import cache_uri
from assay.llm.cache import open_cache
from assay.llm.ensemble import load_ensemble
from assay.llm.shared import open_daily_budget, open_limiter, require_redis
from assay.llm.usage import Spending
from assay.obs.metrics_llm import llm_metrics

MAX_REASON_CHARS = 200
REQUEST_TIMEOUT = "timeout: the request's deadline passed before a slot was free"


class RaterPool:
    """The raters of one ensemble file, shared by all requests (limiter, breakers, cache)."""

    def __init__(
        self,
        ensemble_path: str | None,
        environ: Mapping[str, str],
        *,
        daily_budget_usd: float | None,
        deadline_s: float,
        max_concurrency: int,
        redis_url: str | None = None,
        budget_scope: str = "bias-scorer",
    ) -> None:
        if redis_url is not None:
            require_redis(redis_url)
        ensemble = load_ensemble(ensemble_path, environ)
        self.raters: tuple[str, ...] = tuple(ensemble.raters)
        usable, self.unconfigured = usable_ensemble(ensemble, environ)
        metrics = llm_metrics()
        if daily_budget_usd is not None:
            metrics.set_daily_budget(daily_budget_usd)
        self.daily_budget_usd = daily_budget_usd
        self.shared = redis_url is not None
        self.budget = open_daily_budget(daily_budget_usd, redis_url, scope=budget_scope)
        self.runtime: EnsembleRuntime | None = None
        if usable is not None:
            cache = open_cache(cache_uri(environ.get("ASSAY_CACHE"), redis_url))
            limiter = open_limiter(usable.resilience, redis_url)
            self.runtime = EnsembleRuntime(usable, cache=cache, metrics=metrics, limiter=limiter)
            self.runtime.warm()
        self.version = f"{ensemble.name}@{PROMPT_VERSION}"
        self.deadline_s = deadline_s
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def usable(self) -> list[str]:
        return list(self.runtime.runners) if self.runtime else []

    async def rate(
        self,
        text: str,
        publisher: str | None,
        passage_id: str,
        *,
        until: float | None = None,
        budget: Spending | None = None,
    ) -> PassageScore:
        """Rate one passage with every rater that can answer now (at most max_concurrency
        passages at once); ``until`` (event-loop time) is the request's deadline: a rater still
        rating then, or a passage still waiting for a slot, is missing with reason timeout.
        ``budget``: the request's (a caller's and the scorer's), else the scorer's daily one."""
        rated = PassageScore(missing=dict(self.unconfigured))
        if self.runtime is None:
            return rated
        try:
            async with asyncio.timeout_at(until):
                await self._slots.acquire()
        except TimeoutError:
            rated.missing.update(dict.fromkeys(self.runtime.runners, REQUEST_TIMEOUT))
            return rated
        try:
            spending = budget if budget is not None else self.budget
            await self._rate_in_slot(
                self.runtime, text, publisher, passage_id, until, rated, spending
            )
        finally:
            self._slots.release()
        return rated

    async def _rate_in_slot(
        self,
        runtime: EnsembleRuntime,
        text: str,
        publisher: str | None,
        passage_id: str,
        until: float | None,
        rated: PassageScore,
        budget: Spending,
    ) -> None:
        skipped = await self.unavailable_now(runtime, budget)
        asked = [name for name in runtime.runners if name not in skipped]
        rated.missing.update(skipped)
        if not asked:
            return
        deadline_s = self.deadline_s
        if until is not None:
            deadline_s = max(0.0, min(deadline_s, until - asyncio.get_running_loop().time()))
        result = await score_passage(
            text,
            runtime,
            passage_id=passage_id,
            publisher=publisher,
            deadline_s=deadline_s,
            raters=asked,
            budget=budget,
        )
        rated.ratings = result.ratings
        rated.missing.update({r: why[:MAX_REASON_CHARS] for r, why in result.missing.items()})

    async def unavailable_now(
        self, runtime: EnsembleRuntime, budget: Spending | None = None
    ) -> dict[str, str]:
        """Raters not worth asking now: over the daily budget, or every breaker open; all of
        them when the shared budget cannot be read (fail closed)."""
        try:
            spent = await (budget or self.budget).spent_today()
        except Exception as exc:
            return dict.fromkeys(runtime.runners, f"error: the LLM budget cannot be read ({exc})")
        return unavailable_raters(runtime.runners, self.daily_budget_usd, spent)
