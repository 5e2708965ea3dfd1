"""The LLM-ensemble bias scorer as a KServe model server (v2 REST + gRPC, v1 ``:predict``,
``/metrics``).

``python -m serving.bias_scorer [--ensemble FILE] [--sim]`` (or ``assay serve bias-scorer``) takes
KServe's shared server arguments plus the ones in :func:`build_parser`. The ensemble file is
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
are reported missing; the request fails with 503 only when no rater rated any passage. The
publisher is never shown to the raters (the prompt holds the passage only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import ModelNotReady
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse

from assay.bias.rating.scorer import PassageScore
from assay.errors import AssayError, ConfigError
from assay.obs.logging import get_logger
from assay.obs.metrics_serving import (
    BiasScorerMetrics,
    ServingMetrics,
    bias_scorer_metrics,
    observe_many,
    serving_metrics,
)
from serving._shared import (
    BadRequest,
    RequestLog,
    add_log_arguments,
    check_batch_rows,
    request_id,
    sample_every_from_rate,
    selected_outputs,
    serve_model,
    server_parser,
    start_server_logging,
)
from serving.bias_ensemble import BIASED_SHARE, RATER_PREFIX, aggregate, missing_reasons

DEFAULT_NAME = "bias-scorer"
TEXT, PUBLISHER = "text", "publisher"
SUMMARY_OUTPUTS = {
    "bias_score": "FP32",
    "score_std": "FP32",
    "confidence": "FP32",
    "biased": "INT64",
    "explanation": "BYTES",
    "n_ratings": "INT64",
    "missing_raters": "BYTES",
}
MAX_REASON_CHARS = 200
QUIET_LOGGERS = ("httpx", "httpcore", "openai", "anthropic", "together")

log = get_logger("serving.bias_scorer")


class RatersUnavailable(ModelNotReady):
    """No rater could rate the request: 503 over REST, UNAVAILABLE over gRPC."""

    def __init__(self, message: str) -> None:
        self.reason = message

    def __str__(self) -> str:
        return self.reason


# ---------------------------------------------------------------------------------------------
# Request validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passages:
    texts: list[str]
    publishers: list[str | None]


def passages_from_v2(request: InferRequest, max_rows: int, max_chars: int) -> Passages:
    """The validated passages of a v2 request (``text`` and optional ``publisher``)."""
    by_name: dict[str, InferInput] = {}
    for tensor in request.inputs:
        if tensor.name not in (TEXT, PUBLISHER):
            raise BadRequest(
                f"unknown input {tensor.name!r}: this model takes {TEXT!r} (BYTES [n]) and "
                f"optionally {PUBLISHER!r} (BYTES [n])",
                "wrong_inputs",
            )
        if tensor.name in by_name:
            raise BadRequest(f"input {tensor.name!r} appears more than once", "wrong_inputs")
        by_name[tensor.name] = tensor
    if TEXT not in by_name:
        raise BadRequest(
            f"missing input {TEXT!r}: send the passages as a BYTES tensor of shape [n]",
            "missing_input",
        )
    texts = strings_of(by_name[TEXT], max_rows)
    check_texts(texts, max_chars)
    publishers: list[str | None] = [None] * len(texts)
    if PUBLISHER in by_name:
        given = strings_of(by_name[PUBLISHER], max_rows)
        if len(given) != len(texts):
            raise BadRequest(
                f"input {PUBLISHER!r} has {len(given)} values but {TEXT!r} has {len(texts)}; "
                "send one publisher per passage",
                "wrong_shape",
            )
        publishers = [value.strip() or None for value in given]
    return Passages(texts, publishers)


def strings_of(tensor: InferInput, max_rows: int) -> list[str]:
    """The UTF-8 strings of a BYTES tensor of shape [n] (or [n, 1])."""
    if tensor.datatype.upper() != "BYTES":
        raise BadRequest(
            f"input {tensor.name!r} has datatype {tensor.datatype}; send BYTES (UTF-8 strings)",
            "wrong_datatype",
        )
    shape = list(tensor.shape)
    flat = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
    if not flat or any(not isinstance(dim, int) or dim < 0 for dim in shape):
        raise BadRequest(
            f"input {tensor.name!r} has shape {shape}; expected [n], one string per passage",
            "wrong_shape",
        )
    check_batch_rows(shape[0], max_rows)
    try:
        values = tensor.as_numpy().ravel().tolist()
    except Exception as exc:  # ragged or short data, a broken binary tensor
        raise BadRequest(
            f"input {tensor.name!r}: its data does not fit shape {shape} ({exc})", "wrong_shape"
        ) from None
    return [_as_text(value, tensor.name, row) for row, value in enumerate(values)]


def _as_text(value: Any, name: str, row: int) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(
                f"input {name!r} row {row} is not valid UTF-8", "bad_encoding"
            ) from None
    if isinstance(value, str):
        return value
    raise BadRequest(
        f"input {name!r} row {row} is a {type(value).__name__}, not a string", "non_text"
    )


def check_texts(texts: Sequence[str], max_chars: int) -> None:
    for row, text in enumerate(texts):
        if not text.strip():
            raise BadRequest(f"passage {row} is empty: send some text to rate", "empty_text")
        if len(text) > max_chars:
            raise BadRequest(
                f"passage {row} has {len(text)} characters, over this server's cap of "
                f"{max_chars}; shorten or split it",
                "text_too_long",
            )


def passages_from_v1(payload: Any, max_rows: int, max_chars: int) -> Passages:
    """Passages of a v1 body: ``{"instances": ["text", ...]}`` or ``[{"text", "publisher"}]``."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        raise BadRequest(
            'a v1 request body is {"instances": ["passage", ...]} or '
            '{"instances": [{"text": "...", "publisher": "..."}, ...]}',
            "malformed_request",
        )
    check_batch_rows(len(instances), max_rows, "instances list")
    texts: list[str] = []
    publishers: list[str | None] = []
    for row, instance in enumerate(instances):
        if isinstance(instance, dict):
            text, publisher = instance.get(TEXT), instance.get(PUBLISHER)
        else:
            text, publisher = instance, None
        if not isinstance(text, str) or not (publisher is None or isinstance(publisher, str)):
            raise BadRequest(
                f"instance {row} needs a string 'text' (and an optional string 'publisher')",
                "non_text",
            )
        texts.append(text)
        publishers.append(publisher)
    check_texts(texts, max_chars)
    return Passages(texts, publishers)


# ---------------------------------------------------------------------------------------------
# The KServe model
# ---------------------------------------------------------------------------------------------


class BiasScorerModel(Model):
    """A :class:`kserve.Model` rating passages with an LLM ensemble (one runtime, all requests)."""

    def __init__(
        self,
        name: str,
        ensemble_path: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        max_batch_rows: int = 64,
        max_text_chars: int = 20_000,
        max_concurrency: int = 8,
        rater_deadline_s: float = 30.0,
        daily_budget_usd: float | None = None,
        log_sample_rate: float = 0.01,
        debug_logs: bool = False,
    ) -> None:
        super().__init__(name)
        self.ensemble_path = ensemble_path
        self.environ = dict(os.environ if environ is None else environ)
        self.max_batch_rows = max_batch_rows
        self.max_text_chars = max_text_chars
        self.max_concurrency = max_concurrency
        self.rater_deadline_s = rater_deadline_s
        self.daily_budget_usd = daily_budget_usd
        self.raters: tuple[str, ...] = ()
        self.unconfigured: dict[str, str] = {}
        self.version = "unloaded"
        self.runtime: Any = None
        self.budget: Any = None  # assay.llm.usage.Budget, a daily one
        self.metrics: ServingMetrics = serving_metrics()
        self.bias_metrics: BiasScorerMetrics = bias_scorer_metrics()
        self.request_log = RequestLog(
            "serving.bias_scorer.requests",
            debug=debug_logs,
            sample_every=sample_every_from_rate(log_sample_rate),
        )
        self._slots = asyncio.Semaphore(max_concurrency)

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        from assay.bias.prompt import PROMPT_VERSION
        from assay.bias.rating.availability import SpendingMetrics, usable_ensemble
        from assay.bias.rating.scorer import EnsembleRuntime
        from assay.llm.cache import open_cache
        from assay.llm.ensemble import load_ensemble
        from assay.llm.usage import Budget, utc_today
        from assay.obs.metrics_llm import llm_metrics

        ensemble = load_ensemble(self.ensemble_path, self.environ)
        self.raters = tuple(ensemble.raters)
        usable, self.unconfigured = usable_ensemble(ensemble, self.environ)
        metrics = llm_metrics()
        if self.daily_budget_usd is not None:
            metrics.set_daily_budget(self.daily_budget_usd)
        self.budget = Budget(self.daily_budget_usd, today=utc_today)
        if usable is not None:
            cache = open_cache(self.environ.get("ASSAY_CACHE", "memory://"))
            spending = SpendingMetrics(metrics, self.budget)
            self.runtime = EnsembleRuntime(usable, cache=cache, metrics=spending)
            self.runtime.warm()
        self.version = f"{ensemble.name}@{PROMPT_VERSION}"
        self.metrics.set_model_info(self.name, self.version, "+".join(self.raters), BIASED_SHARE)
        for rater, reason in self.unconfigured.items():
            log.warning("rater_not_configured", rater=rater, reason=reason)
        log.info(
            "ensemble_loaded",
            model=self.name,
            version=self.version,
            raters=list(self.raters),
            usable=list(self.runtime.runners) if self.runtime else [],
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

    # -- inference ---------------------------------------------------------------------------
    async def predict(
        self,
        payload: InferRequest | dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        start = time.perf_counter()
        v2 = isinstance(payload, InferRequest)
        if v2:
            passages = passages_from_v2(payload, self.max_batch_rows, self.max_text_chars)
            outputs = selected_outputs(payload, list(self.output_datatypes))
        else:
            passages = passages_from_v1(payload, self.max_batch_rows, self.max_text_chars)
        rid = request_id(headers, payload if v2 else None)
        rated = await asyncio.gather(
            *(
                self.rate(text, publisher, f"{rid}:{row}")
                for row, (text, publisher) in enumerate(
                    zip(passages.texts, passages.publishers, strict=True)
                )
            )
        )
        missed, reasons = self._count_missing(rated), missing_reasons(rated)
        if not any(passage.ratings for passage in rated):
            self.metrics.count_error("no_rater_answered")
            log.warning("no_rater_answered", request_id=rid, missing=reasons)
            listed = "; ".join(f"{rater} ({reason})" for rater, reason in reasons.items())
            raise RatersUnavailable(f"no rater could rate the passages: {listed}")
        arrays = aggregate(rated, self.raters)
        self._record(arrays, rid, start, missing=missed, missing_reasons=reasons)
        if not isinstance(payload, InferRequest):
            return {"predictions": _v1_rows(arrays), "model_version": self.version}
        return InferResponse(
            response_id=payload.id or rid,
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[
                _output(name, self.output_datatypes[name], arrays[name], payload)
                for name in outputs
            ],
            parameters={
                "raters": ",".join(self.raters),
                "missing_raters": ",".join(r for r in self.raters if r in reasons),
                "missing_reasons": "; ".join(f"{r}: {why}" for r, why in reasons.items()),
                "prompt_version": self.version.rsplit("@", 1)[-1],
            },
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    async def rate(self, text: str, publisher: str | None, passage_id: str) -> PassageScore:
        """Rate one passage with every rater that can answer now (at most max_concurrency)."""
        from assay.bias.rating.scorer import score_passage

        rated = PassageScore(missing=dict(self.unconfigured))
        if self.runtime is None:
            return rated
        async with self._slots:
            skipped = self.unavailable_now()
            asked = [name for name in self.runtime.runners if name not in skipped]
            rated.missing.update(skipped)
            if not asked:
                return rated
            result = await score_passage(
                text,
                self.runtime,
                passage_id=passage_id,
                publisher=publisher,
                deadline_s=self.rater_deadline_s,
                raters=asked,
                budget=self.budget,
            )
        rated.ratings = result.ratings
        rated.missing.update({r: why[:MAX_REASON_CHARS] for r, why in result.missing.items()})
        return rated

    def unavailable_now(self) -> dict[str, str]:
        """Raters not worth asking now: over the daily budget, or every breaker open."""
        from assay.bias.rating.availability import unavailable_raters

        spent = self.budget.spent_today() if self.budget is not None else 0.0
        return unavailable_raters(self.runtime.runners, self.daily_budget_usd, spent)

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
        self, arrays: dict[str, np.ndarray], rid: str, start: float, **log_fields: Any
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
        latency = time.perf_counter() - start
        self.metrics.latency.observe(latency)
        self.request_log.request(
            request_id=rid,
            model=self.name,
            model_version=self.version,
            batch_size=len(arrays["bias_score"]),
            latency_ms=round(latency * 1000, 3),
            predictions=counts,
            **log_fields,
        )


def _output(name: str, datatype: str, array: np.ndarray, request: InferRequest) -> InferOutput:
    output = InferOutput(name=name, shape=[len(array)], datatype=datatype)
    if request.from_grpc:  # KServe's to_grpc cannot take numpy data with raw outputs
        output.set_data_from_numpy(array, binary_data=request.use_binary_outputs)
    else:  # to_rest encodes it, per requested output (JSON or the binary extension)
        output.data = array
    return output


def _v1_rows(arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    def plain(value: Any) -> Any:
        if isinstance(value, float | np.floating):
            return None if np.isnan(value) else round(float(value), 6)
        return value.item() if isinstance(value, np.generic) else value

    n = len(arrays["bias_score"])
    return [{name: plain(array[row]) for name, array in arrays.items()} for row in range(n)]


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    ensemble_path: str | None = None
    name: str = DEFAULT_NAME
    sim: bool = False
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = True
    max_batch_rows: int = 64
    max_text_chars: int = 20_000
    max_concurrency: int = 8
    rater_deadline_s: float = 30.0
    daily_budget_usd: float | None = None
    log_level: str = "info"
    log_sample_rate: float = 0.01


def build_model(options: ServerOptions, environ: Mapping[str, str]) -> BiasScorerModel:
    model = BiasScorerModel(
        options.name,
        options.ensemble_path,
        environ=environ,
        max_batch_rows=options.max_batch_rows,
        max_text_chars=options.max_text_chars,
        max_concurrency=options.max_concurrency,
        rater_deadline_s=options.rater_deadline_s,
        daily_budget_usd=options.daily_budget_usd,
        log_sample_rate=options.log_sample_rate,
        debug_logs=options.log_level.lower() == "debug",
    )
    model.load()
    return model


def run_server(options: ServerOptions) -> None:
    """Load the ensemble, then serve it until SIGTERM/SIGINT (blocks)."""
    start_server_logging(options.log_level)
    for sdk_logger in QUIET_LOGGERS:  # a line per LLM call; the SDKs' debug lines hold passages
        logging.getLogger(sdk_logger).setLevel(logging.WARNING)
    environ = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if options.sim:
            from assay.llm.ensemble import bundled_ensemble_path
            from assay.sim.server import start_sim_server

            sim = stack.enter_context(start_sim_server(port=0))
            environ["ASSAY_SIM_URL"] = sim.base_url
            if options.ensemble_path is None:
                path = str(bundled_ensemble_path("sim"))
                options = dataclasses.replace(options, ensemble_path=path)
            log.info("sim_endpoint_started", url=sim.base_url, note="simulated raters, not LLMs")
        model = build_model(options, environ)
        serve_model(
            model,
            logger_name="serving.bias_scorer",
            http_port=options.http_port,
            grpc_port=options.grpc_port,
            enable_grpc=options.enable_grpc,
            workers=1,  # limiter, breakers and cache are per process
        )


def _env_number(name: str, default: float | None, kind: type = float) -> Any:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = server_parser(
        "python -m serving.bias_scorer",
        "Serve the LLM-ensemble bias scorer over the v2 inference protocol.",
    )
    parser.add_argument(
        "--ensemble",
        "--raters",
        dest="ensemble",
        default=None,
        help="ensemble file (YAML/TOML) (env ASSAY_ENSEMBLE; default: the bundled sim ensemble)",
    )
    parser.add_argument(
        "--sim", action="store_true", help="start the simulated LLM endpoint in this process"
    )
    parser.add_argument(
        "--max_batch_rows",
        type=int,
        default=_env_number("ASSAY_SCORER_MAX_BATCH", 64, int),
        help="most passages one request may send (env ASSAY_SCORER_MAX_BATCH)",
    )
    parser.add_argument(
        "--max_text_chars",
        type=int,
        default=_env_number("ASSAY_SCORER_MAX_TEXT_CHARS", 20_000, int),
        help="longest passage accepted, in characters (env ASSAY_SCORER_MAX_TEXT_CHARS)",
    )
    parser.add_argument(
        "--max_concurrency",
        type=int,
        default=_env_number("ASSAY_SCORER_MAX_CONCURRENCY", 8, int),
        help="passages rated at once across requests (env ASSAY_SCORER_MAX_CONCURRENCY)",
    )
    parser.add_argument(
        "--rater_deadline_s",
        type=float,
        default=_env_number("ASSAY_SCORER_DEADLINE_S", 30.0),
        help="seconds a rater gets per passage, retries included (env ASSAY_SCORER_DEADLINE_S)",
    )
    parser.add_argument(
        "--daily_budget_usd",
        type=float,
        default=_env_number("ASSAY_LLM_DAILY_BUDGET_USD", None),
        help="stop calling raters once this much is spent in a UTC day "
        "(env ASSAY_LLM_DAILY_BUDGET_USD; default unlimited)",
    )
    add_log_arguments(parser)
    parser.set_defaults(model_name=DEFAULT_NAME)
    return parser


def options_from_args(argv: Sequence[str] | None = None) -> ServerOptions:
    args, _ = build_parser().parse_known_args(argv)
    return ServerOptions(
        ensemble_path=args.ensemble,
        name=args.model_name,
        sim=args.sim,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=args.enable_grpc,
        max_batch_rows=args.max_batch_rows,
        max_text_chars=args.max_text_chars,
        max_concurrency=args.max_concurrency,
        rater_deadline_s=args.rater_deadline_s,
        daily_budget_usd=args.daily_budget_usd,
        log_level=args.log_level,
        log_sample_rate=args.log_sample_rate,
    )


def main(argv: Sequence[str] | None = None) -> None:
    try:
        run_server(options_from_args(argv))
    except AssayError as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    main()
