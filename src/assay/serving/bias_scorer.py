"""The LLM-ensemble bias scorer as a KServe model server (v2 REST + gRPC, v1 ``:predict``,
``/metrics``).

Options: :class:`assay.serving.settings.BiasScorerServerSettings`. The ensemble file is
``--ensemble``, else ``$ASSAY_ENSEMBLE``, else the bundled simulated ensemble (whose endpoint is
``$ASSAY_SIM_URL``); ``--sim`` also starts the simulated endpoint inside this process.

v2 tensors (one passage per element):

- inputs: ``text`` BYTES [n] (UTF-8 passages), optional ``publisher`` BYTES [n]
- ``bias_score`` FP32: mean score (-2 liberal ... +2 conservative) of the raters that answered
- ``score_std`` FP32: sample standard deviation of those scores (NaN, JSON null, under 2 ratings)
- ``confidence`` FP32: mean of the answering raters' self-reported confidence (0 ... 1)
- ``biased`` INT64: 1 when at least half of the answering raters flag the passage as one-sided,
  0 otherwise, -1 when no rater rated it
- ``explanation`` BYTES: ``"<rater>: <explanation>"`` from the rater whose score is closest to
  the mean
- ``n_ratings`` INT64: how many raters rated the passage
- ``missing_raters`` BYTES: comma-separated raters that did not rate it ("" when none)
- ``score_<rater>`` FP32, one per rater in ensemble order: that rater's score, NaN (JSON null) when
  it did not answer

Response parameters: ``raters`` (the ensemble order), ``missing_raters`` (raters missing for any
passage), ``missing_reasons`` (``"<rater>: <reason>; ..."``) and ``prompt_version``. Raters that
fail, time out, sit behind an open circuit breaker, lack an API key or are over the daily budget
are reported missing; the request fails with 503 only when no rater rated any passage. Reasons
sent to clients are coarse (``timeout``, ``budget``, ``unavailable (<label>)``); the details are
logged. The publisher is never shown to the raters (the prompt holds the passage only).

Guards (``bias_guard``): a request deadline (``--request-deadline``) under the gateway's timeout,
429 with Retry-After beyond ``--max-queued-passages`` passages in progress, a token cap per passage
(400), and a client's disconnect cancels its request and its provider calls.

KServe's three stages: ``preprocess`` decodes and checks the passages, ``predict`` rates them
(every rater that can answer, at most ``--max-concurrency`` passages at once), ``postprocess``
aggregates the ratings, records metrics and the request log, and builds the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import ModelNotReady
from kserve.model_server import app
from kserve.protocol.infer_type import InferRequest, InferResponse

from assay.bias.rating.scorer import PassageScore
from assay.llm.ensemble import bundled_ensemble_path
from assay.llm.usage import DeadlineSpending, Spending, token_bound
from assay.obs.logging import get_logger
from assay.obs.metrics_serving import (
    BiasScorerMetrics,
    ServingMetrics,
    bias_scorer_metrics,
    observe_many,
    serving_metrics,
)
from assay.serving.bias_caller_http import install_caller_guards
from assay.serving.bias_callers import (
    AnonymousAccess,
    Caller,
    CallerForbidden,
    CallerUnauthenticated,
    read_caller_keys,
)
from assay.serving.bias_ensemble import (
    BIASED_SHARE,
    RATER_PREFIX,
    aggregate,
    missing_reasons,
    v1_rows,
)
from assay.serving.bias_guard import Admission, coarse_reasons, install_guards
from assay.serving.bias_preflight import preflight_scorer
from assay.serving.bias_quota import (
    CallerOverQuota,
    CallerQuotas,
    CallerSpending,
    over_budget,
    store_unavailable,
)
from assay.serving.bias_raters import RaterPool
from assay.serving.body_budget import JsonBudget
from assay.serving.passages import PUBLISHER, TEXT, Passages, passages_from_v1, passages_from_v2
from assay.serving.request_log import RequestLog, sample_every_from_rate
from assay.serving.settings import BiasScorerServerSettings
from assay.serving.startup import serve_model, start_server_logging
from assay.serving.tensors import BadRequest, infer_output, request_id, selected_outputs
from assay.sim.server import start_sim_server

SUMMARY_OUTPUTS = {
    "bias_score": "FP32",
    "score_std": "FP32",
    "confidence": "FP32",
    "biased": "INT64",
    "explanation": "BYTES",
    "n_ratings": "INT64",
    "missing_raters": "BYTES",
}
QUIET_LOGGERS = ("httpx", "httpcore", "openai", "anthropic", "together")
LOGGER = "assay_serving.bias_scorer"

log = get_logger(LOGGER)


class RatersUnavailable(ModelNotReady):
    """No rater could rate the request: 503 over REST, UNAVAILABLE over gRPC."""

    def __init__(self, message: str) -> None:
        self.reason = message

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ScorerRequest:
    """Decoded, checked passages: ``preprocess`` -> ``predict``."""

    passages: Passages
    outputs: list[str]
    request_id: str
    started: float
    v2: InferRequest | None  # None: a v1 ``{"instances": ...}`` body
    caller: Caller


@dataclass(frozen=True)
class ScorerResult:
    """``predict`` -> ``postprocess``: each passage's ratings, and who was missing why."""

    request: ScorerRequest
    rated: list[PassageScore]
    missed: dict[str, int]
    reasons: dict[str, str]


class BiasScorerModel(Model):
    """A :class:`kserve.Model` rating passages with an LLM ensemble (one pool, all requests)."""

    def __init__(self, settings: BiasScorerServerSettings, environ: Mapping[str, str]) -> None:
        super().__init__(settings.name)
        self.settings = settings
        self.environ = dict(environ)
        self.pool: RaterPool | None = None
        self.admission = Admission(settings.max_queued_passages)
        anonymous = AnonymousAccess(
            settings.allow_anonymous,
            settings.anonymous_daily_budget_usd,
            settings.anonymous_max_queued_passages,
        )
        self.callers = read_caller_keys(settings.caller_keys_file, anonymous)  # once, at start
        self.quotas: CallerQuotas | None = None
        self.metrics: ServingMetrics = serving_metrics()
        self.bias_metrics: BiasScorerMetrics = bias_scorer_metrics()
        self.request_log = RequestLog(
            f"{LOGGER}.requests",
            debug=settings.debug_logs,
            sample_every=sample_every_from_rate(settings.log_sample_rate),
        )

    @property
    def raters(self) -> tuple[str, ...]:
        return self.pool.raters if self.pool else ()

    @property
    def version(self) -> str:
        return self.pool.version if self.pool else "unloaded"

    def load(self) -> bool:
        settings = self.settings
        self.pool = pool = RaterPool(
            settings.ensemble_path,
            self.environ,
            daily_budget_usd=settings.daily_budget_usd,
            deadline_s=settings.rater_deadline_s,
            max_concurrency=settings.max_concurrency,
            redis_url=settings.redis_connection_url,
            budget_scope=settings.name,
        )
        self.quotas = CallerQuotas(
            scope=settings.name,
            redis_url=settings.redis_connection_url,
            default_budget_usd=settings.caller_daily_budget_usd,
            default_queued=settings.caller_max_queued_passages,
            hold_ttl_s=settings.request_deadline_s,
        )
        if not self.callers.required:
            log.warning(
                "callers_not_authenticated",
                note="--allow-anonymous: every request is the caller 'anonymous' (local "
                "development only)",
                daily_budget_usd=settings.anonymous_daily_budget_usd,
                max_queued_passages=settings.anonymous_max_queued_passages,
            )
        self.metrics.set_model_info(self.name, pool.version, "+".join(pool.raters), BIASED_SHARE)
        for rater, reason in pool.unconfigured.items():
            log.warning("rater_not_configured", rater=rater, reason=reason)
        log.info(
            "ensemble_loaded",
            model=self.name,
            version=pool.version,
            raters=list(pool.raters),
            usable=pool.usable,
            shared_limits=pool.shared,
        )
        self.ready = True
        return self.ready

    # -- metadata ----------------------------------------------------------------------------
    @property
    def output_datatypes(self) -> dict[str, str]:
        per_rater = {RATER_PREFIX + rater: "FP32" for rater in self.raters}
        return {**SUMMARY_OUTPUTS, **per_rater}

    def get_input_types(self) -> list[dict[str, Any]]:
        return [
            {"name": TEXT, "datatype": "BYTES", "shape": [-1]},
            {"name": PUBLISHER, "datatype": "BYTES", "shape": [-1]},
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "datatype": datatype, "shape": [-1]}
            for name, datatype in self.output_datatypes.items()
        ]

    # -- inference: preprocess -> predict -> postprocess -------------------------------------
    def validate(self, payload: Any) -> Any:
        return payload  # preprocess has checked it

    async def preprocess(
        self, payload: InferRequest | dict[str, Any], headers: dict[str, str] | None = None
    ) -> ScorerRequest:
        started = time.perf_counter()
        caller = self._caller(headers)
        limits = (self.settings.max_batch_rows, self.settings.max_text_chars)
        outputs: list[str] = []
        if isinstance(payload, InferRequest):
            v2: InferRequest | None = payload
            passages = passages_from_v2(payload, *limits)
            outputs = selected_outputs(payload, list(self.output_datatypes))
        else:
            v2, passages = None, passages_from_v1(payload, *limits)
        self._check_tokens(passages.texts)
        return ScorerRequest(passages, outputs, request_id(headers, v2), started, v2, caller)

    def _caller(self, headers: Mapping[str, Any] | None) -> Caller:
        """Who asks (REST checked it before the body; gRPC's metadata is checked here)."""
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        try:
            return self.callers.authenticate(lowered)
        except CallerForbidden as exc:
            self.bias_metrics.caller_refused.labels(exc.caller, "revoked").inc()
            raise
        except CallerUnauthenticated:
            self.bias_metrics.caller_refused.labels("unauthenticated", "unauthenticated").inc()
            raise

    async def predict(
        self,
        payload: ScorerRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> ScorerResult:
        if self.pool is None:
            raise RatersUnavailable("the rater ensemble is not loaded")
        rid, passages, caller = payload.request_id, payload.passages, payload.caller
        until = asyncio.get_running_loop().time() + self.settings.request_deadline_s
        combined, spending = self._spending(self.pool, caller, until)
        try:
            await self._check_budgets(caller, spending, until)
            with self.admission.admit(len(passages.texts)):
                async with self._queue_share(caller, len(passages.texts), until):
                    rated = await self._rate_all(self.pool, payload, until, spending)
        except CallerOverQuota as exc:
            self.bias_metrics.caller_refused.labels(caller.id, exc.limit).inc()
            raise
        if not any(p.ratings for p in rated) and combined.refused_by_caller:
            self.bias_metrics.caller_refused.labels(caller.id, "caller_daily_budget").inc()
            assert self.quotas is not None
            raise over_budget(caller, self.quotas.budget_usd(caller) or 0.0)
        missed, details = self._count_missing(rated), missing_reasons(rated)
        reasons = coarse_reasons(details)  # clients get these; the details stay in the log
        if not any(passage.ratings for passage in rated):
            self.metrics.count_error("no_rater_answered")
            log.warning("no_rater_answered", request_id=rid, missing=details)
            listed = "; ".join(f"{rater} ({reason})" for rater, reason in reasons.items())
            raise RatersUnavailable(f"no rater could rate the passages: {listed}")
        if details:
            log.info("raters_missing", request_id=rid, missing=details)
        return ScorerResult(payload, list(rated), missed, reasons)

    def _spending(
        self, pool: RaterPool, caller: Caller, until: float
    ) -> tuple[CallerSpending, DeadlineSpending]:
        """The request's budget: the caller's and the scorer's, every call under ``until``."""
        own = self.quotas.budget_of(caller) if self.quotas is not None else None
        spend = self.bias_metrics.caller_spend.labels(caller.id)

        def lost(error: str) -> None:
            log.error("spend_not_settled", caller=caller.id, error=error)

        combined = CallerSpending(own, pool.budget, spend.inc)
        return combined, DeadlineSpending(combined, until, lost)

    async def _check_budgets(self, caller: Caller, spending: Spending, until: float) -> None:
        """429 when the caller's day is spent; 503 when the spend record does not answer
        before the deadline (nothing is rated then)."""
        try:
            async with asyncio.timeout_at(until):
                if self.quotas is not None:
                    await self.quotas.check_budget(caller)
                await spending.spent_today()
        except CallerOverQuota:
            raise
        except Exception as exc:
            self.metrics.count_error("spend_store_unavailable")
            log.error("spend_store_unavailable", caller=caller.id, error=repr(exc))
            raise store_unavailable(exc) from None

    @contextlib.asynccontextmanager
    async def _queue_share(self, caller: Caller, passages: int, until: float) -> Any:
        if self.quotas is None:
            yield
            return
        async with self.quotas.queue_share(caller, passages, until):
            yield

    async def _rate_all(
        self, pool: RaterPool, payload: ScorerRequest, until: float, spending: Spending
    ) -> list[PassageScore]:
        """Every passage, concurrently, all within the request's deadline."""
        passages = payload.passages
        return await asyncio.gather(
            *(
                pool.rate(
                    text, publisher, f"{payload.request_id}:{row}", until=until, budget=spending
                )
                for row, (text, publisher) in enumerate(
                    zip(passages.texts, passages.publishers, strict=True)
                )
            )
        )

    def _check_tokens(self, texts: Sequence[str]) -> None:
        """400 for a passage whose prompt would cost a rater more than ``max_passage_tokens``."""
        cap = self.settings.max_passage_tokens
        for row, text in enumerate(texts):
            tokens = token_bound(text)
            if tokens > cap:
                raise BadRequest(
                    f"passage {row} may be up to {tokens} tokens (one per UTF-8 byte), more "
                    f"than the limit of {cap}",
                    "too_many_tokens",
                )

    async def postprocess(
        self,
        result: ScorerResult,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        request, reasons = result.request, result.reasons
        arrays = aggregate(result.rated, self.raters)
        self._record(arrays, request, missing=result.missed, missing_reasons=reasons)
        if request.v2 is None:
            return {"predictions": v1_rows(arrays), "model_version": self.version}
        datatypes = self.output_datatypes
        return InferResponse(
            response_id=request.v2.id or request.request_id,
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[
                infer_output(name, datatypes[name], arrays[name], request.v2)
                for name in request.outputs
            ],
            parameters={
                "raters": ",".join(self.raters),
                "missing_raters": ",".join(r for r in self.raters if r in reasons),
                "missing_reasons": "; ".join(f"{r}: {why}" for r, why in reasons.items()),
                "prompt_version": self.version.rsplit("@", 1)[-1],
            },
            use_binary_outputs=request.v2.use_binary_outputs,
            requested_outputs=request.v2.request_outputs,
        )

    def _count_missing(self, rated: Sequence[PassageScore]) -> dict[str, int]:
        """Per rater, the passages of this request it did not rate (and the metric)."""
        missed = {
            rater: sum(rater in passage.missing for passage in rated) for rater in self.raters
        }
        for rater, count in missed.items():
            if count:
                self.bias_metrics.rater_unavailable.labels(rater).inc(count)
        return {rater: count for rater, count in missed.items() if count}

    def _record(
        self, arrays: dict[str, np.ndarray], request: ScorerRequest, **log_fields: Any
    ) -> None:
        biased = arrays["biased"]
        counts = {
            "biased": int((biased == 1).sum()),
            "unbiased": int((biased == 0).sum()),
            "unrated": int((biased == -1).sum()),
        }
        for label, count in counts.items():
            if count:
                self.metrics.predictions.labels(self.name, self.version, label).inc(count)
        rated_rows = arrays["n_ratings"] > 0
        observe_many(self.metrics.confidence, arrays["confidence"][rated_rows])
        for rater in self.raters:
            scores = arrays[RATER_PREFIX + rater]
            observe_many(self.bias_metrics.rater_score.labels(rater), scores[~np.isnan(scores)])
        latency = time.perf_counter() - request.started
        self.metrics.latency.observe(latency)
        self.request_log.request(
            request_id=request.request_id,
            model=self.name,
            model_version=self.version,
            batch_size=len(arrays["bias_score"]),
            latency_ms=round(latency * 1000, 3),
            predictions=counts,
            **log_fields,
        )


def build_model(settings: BiasScorerServerSettings, environ: Mapping[str, str]) -> BiasScorerModel:
    model = BiasScorerModel(settings, environ)
    model.load()
    return model


def run_server(settings: BiasScorerServerSettings, environ: Mapping[str, str]) -> None:
    """Load the ensemble, then serve it until SIGTERM/SIGINT (blocks).

    ``environ`` holds the provider API keys, ``ASSAY_SIM_URL`` and ``ASSAY_CACHE``; with
    ``--redis-url`` an unreachable Redis stops the start (ConfigError).
    """
    start_server_logging(settings.log_level)
    for sdk_logger in QUIET_LOGGERS:  # a line per LLM call; the SDKs' debug lines hold passages
        logging.getLogger(sdk_logger).setLevel(logging.WARNING)
    environ = dict(environ)
    with contextlib.ExitStack() as stack:
        if settings.sim:
            sim = stack.enter_context(start_sim_server(port=0))
            environ["ASSAY_SIM_URL"] = sim.base_url
            if settings.ensemble_path is None:
                path = str(bundled_ensemble_path("sim"))
                settings = settings.model_copy(update={"ensemble_path": path})
            log.info("sim_endpoint_started", url=sim.base_url, note="simulated raters, not LLMs")
        preflight_scorer(settings.ensemble_path, environ, settings.max_text_chars)
        model = build_model(settings, environ)
        install_guards(app, model.metrics, LOGGER)
        install_caller_guards(app, model.callers, model.bias_metrics, LOGGER)
        # one process; the limiter, budget and cache are shared across replicas with --redis-url
        budget = replace(
            JsonBudget.for_tensors(
                rows=settings.max_batch_rows, values_per_row=1, tensors=2, text=True
            ),
            max_string_bytes=settings.max_passage_tokens,
            string_limit_reason="a passage may cost a rater at most --max-passage-tokens "
            "tokens, one per UTF-8 byte",
        )
        serve_model(model, settings, logger_name=LOGGER, budget=budget, workers=1)
