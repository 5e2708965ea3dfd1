"""Where the rating calls are made: one worker per process, a runner per rater.

``RatingWorker`` runs in the fan-out's own process (small runs, tests) or, as
``RayRatingWorker``, in a Ray actor that builds itself from JSON and talks to the shared limiter
actor; either way a ``FatalError`` comes back as the outcome's ``fatal`` instead of a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.bias.rating.rater import RatingOutcome, build_runners
from assay.llm.clock import Clock
from assay.llm.ensemble import Ensemble
from assay.llm.errors import FatalError
from assay.llm.ratelimit import Limiter, RayLimiter
from assay.llm.router import ProviderFactory, sdk_provider
from assay.obs.metrics_llm import LLMMetrics, RecordingMetrics


class RatingWorker:
    """Makes the calls of one process: a runner (router, breakers, SDK clients) per rater."""

    def __init__(
        self,
        ensemble: Ensemble,
        limiter: Limiter,
        *,
        metrics: LLMMetrics,
        provider_factory: ProviderFactory = sdk_provider,
        clock: Clock | None = None,
    ) -> None:
        self.metrics = metrics
        self.runners = build_runners(
            ensemble, limiter, metrics=metrics, provider_factory=provider_factory, clock=clock
        )

    async def rate(self, task: Mapping[str, Any]) -> RatingOutcome:
        runner = self.runners[task["rater"]]
        try:
            outcome = await runner.rate(task)
        except FatalError as exc:
            outcome = RatingOutcome(row={}, fatal=exc)
        if isinstance(self.metrics, RecordingMetrics):
            outcome.metric_events = outcome.metric_events + self.metrics.drain()
        return outcome

    async def warm(self) -> None:
        """Build every SDK client now (imports included), so the first calls are not slow."""
        for runner in self.runners.values():
            runner.router.warm()

    async def aclose(self) -> None:
        for runner in self.runners.values():
            await runner.aclose()


class RayRatingWorker(RatingWorker):
    """The Ray actor flavour: builds itself from JSON and talks to the shared limiter actor."""

    def __init__(self, ensemble_json: str, limiter_handle: Any) -> None:
        super().__init__(
            Ensemble.model_validate_json(ensemble_json),
            RayLimiter(limiter_handle),
            metrics=RecordingMetrics(),
        )
