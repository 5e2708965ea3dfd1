"""Fan-out: rate every passage with every rater, in parallel, durably and resumably.

What runs where:
- the DRIVER (this process) skips ratings already in the store, serves cache hits, checks the
  budget before each call, appends every result to the ``RatingsStore`` as it completes
  (fsync'd) and exports the metrics;
- a small pool of Ray ACTORS (``RatingWorker``), each an asyncio loop with many calls in flight,
  makes the provider calls with their own breakers and SDK clients;
- ONE limiter actor holds every endpoint's smoothing bucket, so all workers share the limits
  (with ``ASSAY_REDIS_URL`` the buckets live in Redis, shared with every other process).

``use_ray=False`` runs the same worker in this process (small runs, tests). A killed run resumes
where it stopped: finished keys are in the store and are never sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from assay.bias.rating.rater import (
    RatingOutcome,
    cacheable,
    cached_row,
    rating_cache_key,
    rating_key,
)
from assay.bias.rating.store_writer import StoreWriter
from assay.bias.rating.task import RatingTask
from assay.bias.rating.workers import RatingWorker, RayRatingWorker
from assay.bias.store import BaseRatingsStore
from assay.config import Settings, cache_uri
from assay.errors import DataValidationError
from assay.llm.cache import Cache, open_cache
from assay.llm.clock import Clock
from assay.llm.ensemble import Ensemble
from assay.llm.ratelimit import start_limiter_actor
from assay.llm.router import ProviderFactory, sdk_provider
from assay.llm.shared import open_limiter, require_redis, start_shared_limiter_actor
from assay.llm.usage import Budget, LocalSpending, Usage, charged, worst_case_cost
from assay.obs.logging import get_logger
from assay.obs.metrics_llm import LLMMetrics, llm_metrics, replay
from assay.parallel import init_ray, start_spread

PASSAGE_COLUMNS = ("passage_id", "text", "publisher")
log = get_logger(__name__)


@dataclass
class RunSummary:
    """What a fan-out run did. ``rated + failed + not_started + skipped == total``.
    ``cost_usd`` is this run's spend; ``spent_before_usd`` what the store held for the same
    ratings before it (the budget counts both)."""

    total: int
    spent_before_usd: float = 0.0
    skipped: int = 0
    cache_hits: int = 0
    rated: int = 0
    failed: int = 0
    not_started: int = 0
    provider_calls: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    stopped_reason: str | None = None
    failures: dict[str, int] = field(default_factory=dict)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list, repr=False)
    """Per sent rating: seconds from dispatch to result (limiter waits and retries included)."""

    def latency_quantile(self, q: float) -> float:
        """A quantile of ``latencies_s`` (0.0 when nothing was sent)."""
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate_passages(
    passages: Any,
    ensemble: Ensemble,
    store: BaseRatingsStore,
    *,
    concurrency: int = 32,
    budget_usd: float | None = None,
    progress: bool = True,
    cache: Cache | str | None = None,
    raters: list[str] | None = None,
    use_ray: bool = True,
    workers: int = 2,
    metrics: LLMMetrics | None = None,
    provider_factory: ProviderFactory | None = None,
    clock: Clock | None = None,
    redis_url: str | None = None,
) -> RunSummary:
    """Rate ``passages`` (a DataFrame with passage_id, text, publisher[, textbook]) with every
    rater of ``ensemble`` and append the rows to ``store``; returns what happened.

    ``cache``: a Cache, a URI (``memory://``, ``redis://...``) or None for ``$ASSAY_CACHE``.
    ``redis_url`` (None: ``$ASSAY_REDIS_URL``, with ``$ASSAY_REDIS_PASSWORD``) shares the limits
    and cache; it must answer now.
    ``provider_factory``/``clock`` replace the SDKs/real time (in-process runs only).
    A ``FatalError`` (e.g. a missing or wrong API key) stops the run and is raised after the
    calls in flight are stored.

    ``budget_usd`` is the study's: what ``store`` already spent on these ratings (earlier,
    resumed runs) counts against it, so resuming never spends past it.
    """
    tasks = _tasks(passages, ensemble, raters)
    spent_before = store.spent_usd({task["key"] for task in tasks})
    if concurrency < 1:
        raise DataValidationError(f"concurrency must be at least 1, got {concurrency}")
    settings = Settings()
    redis_url = redis_url or settings.shared_redis_url
    if redis_url is not None:
        require_redis(redis_url)
        cache = cache_uri(settings.cache, redis_url) if cache is None else cache
    return asyncio.run(
        _Run(
            tasks,
            ensemble,
            store,
            concurrency=concurrency,
            budget=LocalSpending(Budget(budget_usd, spent_usd=spent_before)),
            cache=open_cache(cache) if cache is None or isinstance(cache, str) else cache,
            metrics=metrics or llm_metrics(),
            progress=progress,
            redis_url=redis_url,
        ).execute(
            use_ray=use_ray,
            workers=workers,
            provider_factory=provider_factory or sdk_provider,
            clock=clock,
        )
    )


def _tasks(passages: Any, ensemble: Ensemble, raters: list[str] | None) -> list[dict[str, Any]]:
    missing = [c for c in PASSAGE_COLUMNS if c not in passages.columns]
    if missing:
        raise DataValidationError(f"passages lack column(s): {', '.join(missing)}")
    if passages["passage_id"].duplicated().any():
        dup = passages.loc[passages["passage_id"].duplicated(), "passage_id"].iloc[0]
        raise DataValidationError(f"passage_id {dup!r} appears more than once")
    unknown = sorted(set(raters or []) - set(ensemble.raters))
    if unknown:
        raise DataValidationError(f"unknown rater(s) {', '.join(unknown)}")
    chosen = raters or list(ensemble.raters)
    keep = [c for c in ("passage_id", "text", "publisher", "textbook") if c in passages.columns]
    records = passages[keep].to_dict("records")
    tasks = []
    for record in records:  # passage-major order: every rater sees a passage at about the same time
        for rater in chosen:
            model = ensemble.raters[rater].model
            tasks.append(
                {**record, "rater": rater, "key": rating_key(record["passage_id"], rater, model)}
            )
    return tasks


class _Run:
    def __init__(
        self,
        tasks: list[dict[str, Any]],
        ensemble: Ensemble,
        store: BaseRatingsStore,
        *,
        concurrency: int,
        budget: LocalSpending,
        cache: Cache,
        metrics: LLMMetrics,
        progress: bool,
        redis_url: str | None,
    ) -> None:
        self.tasks = tasks
        self.redis_url = redis_url
        self.ensemble = ensemble
        self.store = store
        self.concurrency = concurrency
        self.budget = budget
        self.cache = cache
        self.metrics = metrics
        self.progress = progress
        self.usage = Usage()
        self.summary = RunSummary(total=len(tasks), spent_before_usd=budget.budget.spent_usd)
        self.fatal: BaseException | None = None
        self.writer = StoreWriter(store)
        self._advance: Callable[[], None] = lambda: None

    async def execute(
        self, *, use_ray: bool, workers: int, provider_factory: ProviderFactory, clock: Clock | None
    ) -> RunSummary:
        started = time.monotonic()
        finished = self.store.finished_keys()
        todo = [t for t in self.tasks if t["key"] not in finished]
        self.summary.skipped = len(self.tasks) - len(todo)
        dispatch, close = await self._executor(use_ray, workers, provider_factory, clock, todo)
        self.writer.start()
        try:
            with self._progress_bar(len(todo)):
                await self._run_all(todo, dispatch)
        finally:
            await self.writer.close()
            await close()
            self.summary.elapsed_s = time.monotonic() - started
            self.summary.cost_usd = self.usage.cost_usd
            self.summary.usage = self.usage.as_dict()
            self.summary.provider_calls = self.usage.calls
        log.info("llm fan-out finished", **_public(self.summary))
        if self.fatal is not None:
            raise self.fatal
        return self.summary

    async def _executor(
        self,
        use_ray: bool,
        workers: int,
        provider_factory: ProviderFactory,
        clock: Clock | None,
        todo: list[dict[str, Any]],
    ) -> tuple[Callable[[dict[str, Any]], Any], Callable[[], Any]]:
        if not todo:
            return _no_dispatch, _noop
        if not use_ray:
            limiter = open_limiter(self.ensemble.resilience, self.redis_url, clock)
            worker = RatingWorker(
                self.ensemble,
                limiter,
                metrics=self.metrics,
                provider_factory=provider_factory,
                clock=clock,
            )
            await worker.warm()
            return worker.rate, worker.aclose
        return await self._ray_executor(workers)

    async def _ray_executor(
        self, workers: int
    ) -> tuple[Callable[[dict[str, Any]], Any], Callable[[], Any]]:
        ray = init_ray()
        resilience, url = self.ensemble.resilience, self.redis_url
        limiter = start_shared_limiter_actor(ray, resilience, url) if url else None
        limiter = limiter or start_limiter_actor(ray, resilience)
        per_worker = max(1, -(-self.concurrency // workers))
        actor_cls = ray.remote(num_cpus=0, max_concurrency=per_worker + 8)(RayRatingWorker)
        pool = start_spread(ray, actor_cls, workers, self.ensemble.model_dump_json(), limiter)
        await asyncio.gather(*(actor.warm.remote() for actor in pool))
        turn = iter(range(1 << 62))

        async def dispatch(task: dict[str, Any]) -> RatingOutcome:
            actor = pool[next(turn) % len(pool)]
            outcome: RatingOutcome = await actor.rate.remote(task)
            return outcome

        async def close() -> None:
            await asyncio.gather(*(a.aclose.remote() for a in pool), return_exceptions=True)
            for actor in [*pool, limiter]:
                ray.kill(actor)

        return dispatch, close

    async def _run_all(
        self, todo: list[dict[str, Any]], dispatch: Callable[[dict[str, Any]], Any]
    ) -> None:
        """One lane per rater, each with its share of the concurrency (at least 1), so a paused
        or failing endpoint holds only its own rater's slots."""
        if not todo:
            return
        lanes: dict[str, list[dict[str, Any]]] = {}
        for task in todo:
            lanes.setdefault(task["rater"], []).append(task)
        width = max(1, self.concurrency // len(lanes))
        await asyncio.gather(*(self._lane(tasks, dispatch, width) for tasks in lanes.values()))

    async def _lane(
        self,
        tasks: list[dict[str, Any]],
        dispatch: Callable[[dict[str, Any]], Any],
        width: int,
    ) -> None:
        slots = asyncio.Semaphore(width)
        pending: set[asyncio.Task[None]] = set()
        for task in tasks:
            await slots.acquire()
            if self.fatal is not None or self.budget.exhausted:
                slots.release()
                self._not_started(task)
                continue
            job = asyncio.create_task(self._one(task, dispatch, slots))
            pending.add(job)
            job.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)

    async def _one(
        self,
        task: dict[str, Any],
        dispatch: Callable[[dict[str, Any]], Any],
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            rater = self.ensemble.raters[task["rater"]]
            hit = await self._from_cache(task)
            if hit is not None:
                self._record(task, hit)
                return
            asked = RatingTask(str(task["text"]))
            reservation = await self.budget.try_reserve(
                worst_case_cost(rater, asked.system, asked.prompt)
            )
            if reservation is None:
                self.summary.stopped_reason = "budget"
                self._not_started(task)
                return
            sent = time.monotonic()
            outcome = await charged(self.budget, reservation, dispatch(task), lambda o: o.cost)
            self.summary.latencies_s.append(time.monotonic() - sent)
            self._record(task, outcome)
            if outcome.ok and outcome.cache_key:
                await self.cache.set(outcome.cache_key, cacheable(outcome.row))
        finally:
            slots.release()

    async def _from_cache(self, task: dict[str, Any]) -> RatingOutcome | None:
        cfg = self.ensemble.raters[task["rater"]]
        ckey = rating_cache_key(cfg, str(task["text"]))
        value = await self.cache.get(ckey)
        if value is None:
            return None
        self.metrics.cache_hit(task["rater"])
        row = cached_row(task, task["rater"], cfg.model, value)
        return RatingOutcome(row=row, cached=True, cache_key=ckey)

    def _record(self, task: dict[str, Any], outcome: RatingOutcome) -> None:
        replay(outcome.metric_events, self.metrics)
        if outcome.fatal is not None:
            self.fatal = self.fatal or outcome.fatal
            self._not_started(task)
            return
        self.writer.put(outcome.row)
        rater = task["rater"]
        if outcome.cached:
            self.summary.cache_hits += 1
            self.usage.add_cache_hit(rater)
        else:
            self.usage.add(
                rater,
                calls=outcome.calls,
                input_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens,
                cost=outcome.cost,
            )
            self.summary.retries += outcome.retries
        if outcome.ok:
            self.summary.rated += 1
        else:
            self.summary.failed += 1
            reason = str(outcome.row["error"]).split(":", 1)[0]
            self.summary.failures[reason] = self.summary.failures.get(reason, 0) + 1
        self._advance()

    def _not_started(self, task: dict[str, Any]) -> None:
        self.summary.not_started += 1
        self._advance()

    def _progress_bar(self, total: int) -> Any:
        if not self.progress or total == 0:
            return nullcontext()
        bar = Progress(
            TextColumn("[bold]rating[/] passages x raters"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        task_id = bar.add_task("rating", total=total)
        self._advance = lambda: bar.advance(task_id)
        return bar


async def _no_dispatch(task: dict[str, Any]) -> RatingOutcome:
    raise AssertionError("nothing to dispatch")


async def _noop() -> None:
    return None


def _public(summary: RunSummary) -> dict[str, Any]:
    public = {k: v for k, v in vars(summary).items() if k not in ("usage", "latencies_s")}
    public["p99_latency_s"] = round(summary.latency_quantile(0.99), 3)
    return public
