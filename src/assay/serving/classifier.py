"""The WDBC classifier as a KServe model server (v2 REST + gRPC, v1 ``:predict``, ``/metrics``).

The model URI (``--model`` / ``ASSAY_MODEL_URI``) is a version folder (plain path or
``file://``) or a registry model URI ``<root>/<name>/<version|alias>`` (``file://`` or ``s3://``).

v2 tensors (docs/design.md): input ``input-0`` [rows, 30] FP32/FP64/INT in the card's feature
order; outputs ``predict`` INT64 (1 = malignant, ``probability >= threshold`` at the card's
clinical threshold), ``probability`` FP32 (P(malignant)) and ``confidence`` FP32, defined as
``max(p, 1 - p)``: how far the model's probability is from a coin toss, whatever the label.

Range rule: a value outside ``[min - k*(max-min), max + k*(max-min)]`` of its feature's training
range in the card (``feature_ranges``, k = ``RANGE_MARGIN`` = 1) is a 400 naming the feature. A
card without ranges (older versions) still loads; then a value the scaler overflows is refused.
A non-finite probability is never turned into a label (400).

KServe's three stages: ``preprocess`` decodes and checks the request into a
:class:`ClassifierRequest`, ``predict`` runs it through the adaptive batcher, ``postprocess``
applies the threshold, records metrics and the request log, and builds the response.

Reload without restart (:mod:`assay.serving.reload`): ``POST /v2/repository/models/<name>/load``
(with the admin token, :mod:`assay.serving.repository`), ``SIGHUP``, or polling every
``--reload-interval`` seconds re-resolve the URI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InferenceError, ModelNotFound
from kserve.protocol.infer_type import InferRequest, InferResponse

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics, observe_many, serving_metrics
from assay.serving.batching import AdaptiveBatcher
from assay.serving.body_budget import JsonBudget
from assay.serving.classifier_versions import (
    N_FEATURES,
    LoadedClassifier,
    load_from_source,
    source_from_uri,
    trust_for_source,
)
from assay.serving.reload import Reloader
from assay.serving.repository import ServingRepository
from assay.serving.request_log import RequestLog, sample_every_from_rate
from assay.serving.settings import ClassifierServerSettings
from assay.serving.startup import freeze_startup_heap, serve_model, start_server_logging
from assay.serving.tensors import (
    BadRequest,
    check_finite_proba,
    check_in_range,
    infer_output,
    request_id,
    rows_from_v1,
    selected_outputs,
    single_input,
    tensor_to_matrix,
)
from assay.tested_versions import require_tested

INPUT_NAME = "input-0"
OUTPUTS = ("predict", "probability", "confidence")
OUTPUT_DATATYPES = {"predict": "INT64", "probability": "FP32", "confidence": "FP32"}
LOGGER = "assay_serving.classifier"

log = get_logger(LOGGER)


@dataclass(frozen=True)
class ClassifierRequest:
    """A decoded, checked request: ``preprocess`` -> ``predict``."""

    matrix: np.ndarray
    outputs: list[str]
    request_id: str
    started: float
    v2: InferRequest | None  # None: a v1 ``{"instances": ...}`` body


@dataclass(frozen=True)
class BatchPart:
    """One request's share of a batched model call, with the version that computed it."""

    proba: np.ndarray
    served: LoadedClassifier


@dataclass(frozen=True)
class ClassifierResult:
    """``predict`` -> ``postprocess``."""

    request: ClassifierRequest
    part: BatchPart


class ClassifierModel(Model):
    """A :class:`kserve.Model` answering v2/v1 inference for the WDBC classifier."""

    def __init__(
        self, settings: ClassifierServerSettings, metrics: ServingMetrics | None = None
    ) -> None:
        super().__init__(settings.name)
        self.settings = settings
        self._metrics = metrics
        self._reloader: Reloader[LoadedClassifier] | None = None
        self._batcher: AdaptiveBatcher[np.ndarray, BatchPart] | None = None
        self._request_log: RequestLog | None = None
        self._info_labels: tuple[str, ...] | None = None
        self.engine = True  # KServe then awaits start_engine() inside the server's event loop

    # -- pickling for KServe's --workers > 1 (spawned processes load their own copy) ---------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(
            _metrics=None, _reloader=None, _batcher=None, _request_log=None, _info_labels=None
        )
        return state

    @property
    def metrics(self) -> ServingMetrics:
        if self._metrics is None:
            self._metrics = serving_metrics()
        return self._metrics

    @property
    def reloader(self) -> Reloader[LoadedClassifier]:
        if self._reloader is None:
            settings = self.settings
            self._reloader = Reloader(
                lambda: source_from_uri(settings.model_uri),
                lambda source: load_from_source(
                    source,
                    settings.compile,
                    trust_for_source(source, settings.trusted_keys, settings.allow_unsigned_models),
                ),
                self._on_swap,
                logger_name=LOGGER,
            )
        return self._reloader

    @property
    def batcher(self) -> AdaptiveBatcher[np.ndarray, BatchPart]:
        if self._batcher is None:
            self._batcher = AdaptiveBatcher(
                self.run_batch,
                max_batch_size=self.settings.max_batch_rows,
                max_wait_s=self.settings.max_batch_wait_ms / 1000.0,
            )
        return self._batcher

    @property
    def request_log(self) -> RequestLog:
        if self._request_log is None:
            self._request_log = RequestLog(
                f"{LOGGER}.requests",
                debug=self.settings.debug_logs,
                sample_every=sample_every_from_rate(self.settings.log_sample_rate),
            )
        return self._request_log

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        self.reloader.load_now()
        self.ready = True
        return self.ready

    async def start_engine(self) -> None:
        """Runs in the server's event loop: SIGHUP and the optional polling reloader."""
        self.reloader.watch(self.settings.reload_interval)
        self.ready = self.reloader.current is not None

    def stop_engine(self) -> None:
        self.batcher.stop()
        self.reloader.stop()
        self.ready = False

    async def reload(self) -> bool:
        """Load the version the URI points to now, if it changed; True when swapped."""
        return await self.reloader.reload()

    def _on_swap(self, loaded: LoadedClassifier, previous: LoadedClassifier | None) -> None:
        self._info_labels = self.metrics.set_model_info(
            self.name, loaded.version, loaded.estimator, loaded.threshold, self._info_labels
        )
        log.info(
            "model_loaded",
            model=self.name,
            version=loaded.version,
            previous=previous.version if previous else None,
            estimator=loaded.estimator,
            threshold=loaded.threshold,
            backend=loaded.proba.backend,
        )

    # -- metadata ----------------------------------------------------------------------------
    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": [-1]} for name in OUTPUTS
        ]

    # -- inference: preprocess -> predict -> postprocess -------------------------------------
    def validate(self, payload: Any) -> Any:
        return payload  # preprocess has checked it

    async def preprocess(
        self, payload: InferRequest | dict[str, Any], headers: dict[str, str] | None = None
    ) -> ClassifierRequest:
        started = time.perf_counter()
        v2 = payload if isinstance(payload, InferRequest) else None
        rid = request_id(headers, v2)
        max_rows = self.settings.max_batch_rows
        served = self.reloader.current
        names = served.feature_names if served else ()
        if v2 is None:
            matrix = rows_from_v1(payload, N_FEATURES, max_rows)
        else:
            matrix = tensor_to_matrix(single_input(v2, INPUT_NAME), N_FEATURES, max_rows, names)
        if served is not None:
            check_scorable(matrix, served)
        if v2 is None:
            return ClassifierRequest(matrix, ["predict"], rid, started, None)
        return ClassifierRequest(matrix, selected_outputs(v2, OUTPUTS), rid, started, v2)

    async def predict(
        self,
        payload: ClassifierRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> ClassifierResult:
        try:
            part = await self.batcher.submit(payload.matrix, size=len(payload.matrix))
        except Exception as exc:
            self.metrics.count_error("internal")
            log.error("inference_failed", model=self.name, error=repr(exc))
            raise InferenceError(f"inference failed: {type(exc).__name__}") from exc
        return ClassifierResult(payload, part)

    async def postprocess(
        self,
        result: ClassifierResult,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        request, proba, served = result.request, result.part.proba, result.part.served
        check_finite_proba(proba)
        predict = (proba >= served.threshold).astype(np.int64)
        confidence = np.maximum(proba, 1.0 - proba)
        self._record(predict, confidence, served, request)
        if request.v2 is None:
            return {"predictions": predict.tolist(), "model_version": served.version}
        arrays = {
            "predict": predict,
            "probability": proba.astype(np.float32),
            "confidence": confidence.astype(np.float32),
        }
        return InferResponse(
            response_id=request.request_id,
            model_name=self.name,
            model_version=served.version,
            infer_outputs=[
                infer_output(name, OUTPUT_DATATYPES[name], arrays[name], request.v2)
                for name in request.outputs
            ],
            use_binary_outputs=request.v2.use_binary_outputs,
            requested_outputs=request.v2.request_outputs,
        )

    def _record(
        self,
        predict: np.ndarray,
        confidence: np.ndarray,
        served: LoadedClassifier,
        request: ClassifierRequest,
    ) -> None:
        metrics = self.metrics
        malignant = int(predict.sum())
        counts = {"malignant": malignant, "benign": len(predict) - malignant}
        for label, count in counts.items():
            if count:
                metrics.predictions.labels(self.name, served.version, label).inc(count)
        observe_many(metrics.confidence, confidence)
        latency = time.perf_counter() - request.started
        metrics.latency.observe(latency)
        self.request_log.request(
            request_id=request.request_id,
            model=self.name,
            model_version=served.version,
            batch_size=len(predict),
            latency_ms=round(latency * 1000, 3),
            predictions=counts,
        )

    def run_batch(self, matrices: list[np.ndarray]) -> list[BatchPart]:
        """One model call for the rows of several requests (called by the batcher)."""
        served = self.reloader.current or self.reloader.load_now()  # a spawned worker loads now
        stacked = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
        proba = served.predict(stacked)
        bounds = np.cumsum([len(matrix) for matrix in matrices])[:-1]
        return [BatchPart(part, served) for part in np.split(proba, bounds)]


class ClassifierRepository(ServingRepository):
    """The model repository whose v2 ``load`` reloads the named model (and makes it ready)."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if not isinstance(model, ClassifierModel):
            raise ModelNotFound(name)
        await model.reload()
        model.ready = model.reloader.current is not None
        return True


def check_scorable(matrix: np.ndarray, served: LoadedClassifier) -> None:
    """Rows far outside the card's training ranges are refused; a card without ranges (older
    versions) still refuses values its scaler would overflow to infinity."""
    if served.limits is not None:
        check_in_range(matrix, *served.limits, served.feature_names)
        return
    overflow = served.overflowing(matrix)
    if overflow is not None and overflow.any():
        row, col = (int(i) for i in np.argwhere(overflow)[0])
        raise BadRequest(
            f"input value {matrix[row, col]:.6g} at row {row}, column {col} "
            f"({served.feature_names[col]!r}) is too large to score: standardised it is not "
            "finite",
            "non_finite",
        )


def build_model(settings: ClassifierServerSettings) -> ClassifierModel:
    model = ClassifierModel(settings)
    model.load()
    return model


def run_server(settings: ClassifierServerSettings) -> None:
    """Load the model, then serve it until SIGTERM/SIGINT (blocks)."""
    require_tested("kserve", "scikit-learn")
    start_server_logging(settings.log_level)
    model = build_model(settings)
    freeze_startup_heap()
    serve_model(
        model,
        settings,
        logger_name=LOGGER,
        budget=JsonBudget.for_tensors(rows=settings.max_batch_rows, values_per_row=N_FEATURES),
        workers=settings.workers,
        registered_models=ClassifierRepository(),
        fast_rest=settings.fast_rest,
    )
