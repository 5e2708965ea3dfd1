"""The WDBC classifier as a KServe model server (v2 REST + gRPC, v1 ``:predict``, ``/metrics``).

``python -m serving.classifier --model_uri URI`` (or ``ASSAY_MODEL_URI``; default
``/mnt/models``, where KServe's storage initializer puts a version folder) takes KServe's shared
server arguments plus the ones in :func:`build_parser`. ``URI`` is a version folder (plain path or
``file://``) or a registry model URI ``<root>/<name>/<version|alias>`` (``file://`` or ``s3://``).

v2 tensors (docs/design.md): input ``input-0`` [rows, 30] FP32/FP64/INT in the card's feature
order; outputs ``predict`` INT64 (1 = malignant, ``probability >= threshold`` at the card's
clinical threshold), ``probability`` FP32 (P(malignant)) and ``confidence`` FP32, defined as
``max(p, 1 - p)``: how far the model's probability is from a coin toss, whatever the label.

Reload without restart: ``POST /v2/repository/models/<name>/load``, ``SIGHUP``, or polling every
``--reload_interval`` seconds re-resolve the URI (e.g. a moved ``production`` alias); a new
version is loaded and checked completely, then swapped in with one reference assignment, so
requests in flight finish on the old version and none fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InferenceError, ModelNotFound
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from assay.errors import AssayError
from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics, observe_many, serving_metrics
from serving._shared import (
    AdaptiveBatcher,
    RequestLog,
    add_log_arguments,
    request_id,
    rows_from_v1,
    sample_every_from_rate,
    selected_outputs,
    serve_model,
    server_parser,
    single_input,
    start_server_logging,
    tensor_to_matrix,
)
from serving.sklearn_predictor import PipelineProba, build_proba

DEFAULT_NAME = "wdbc-classifier"
DEFAULT_MODEL_URI = "/mnt/models"
INPUT_NAME = "input-0"
N_FEATURES = 30
OUTPUTS = ("predict", "probability", "confidence")
OUTPUT_DATATYPES = {"predict": "INT64", "probability": "FP32", "confidence": "FP32"}
LABELS = {0: "benign", 1: "malignant"}
MODEL_FILE = "model.joblib"
CARD_FILE = "model-card.json"

log = get_logger("serving.classifier")


class InvalidModelError(AssayError):
    """The model folder or its card is not a servable WDBC classifier."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------
# A loaded, checked model version
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedClassifier:
    """Everything one request needs, swapped as a unit on reload."""

    version: str
    estimator: str
    threshold: float
    feature_names: tuple[str, ...]
    proba: PipelineProba
    card: dict[str, Any] = field(repr=False)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.proba(matrix)


def check_card(card: dict[str, Any], where: str) -> tuple[float, tuple[str, ...]]:
    """The threshold and feature names of a card that fits this server, or InvalidModelError."""
    names = card.get("feature_names")
    if not isinstance(names, list) or len(names) != N_FEATURES:
        count = len(names) if isinstance(names, list) else "no"
        raise InvalidModelError(
            f"{where}: the card lists {count} feature_names, need {N_FEATURES}."
        )
    threshold = card.get("threshold")
    if not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise InvalidModelError(f"{where}: the card has no threshold in [0, 1] ({threshold!r}).")
    if card.get("positive_class") != "malignant" or card.get("positive_label") != 1:
        raise InvalidModelError(
            f"{where}: the card's positive class must be 'malignant' with label 1, got "
            f"{card.get('positive_class')!r} / {card.get('positive_label')!r}."
        )
    return float(threshold), tuple(str(name) for name in names)


def load_folder(folder: Path, compile: bool = True) -> LoadedClassifier:
    """Load and check ``folder/{model.joblib, model-card.json}``."""
    import json

    import joblib

    card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
    if not card_path.is_file() or not model_path.is_file():
        raise InvalidModelError(f"{folder} needs {MODEL_FILE} and {CARD_FILE}.")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidModelError(f"{card_path} is not readable JSON: {exc}") from exc
    threshold, names = check_card(card, str(folder))
    pipeline = joblib.load(model_path)
    classes = list(getattr(pipeline, "classes_", []))
    if not hasattr(pipeline, "predict_proba") or classes != [0, 1]:
        raise InvalidModelError(
            f"{model_path}: need a fitted binary classifier with classes [0, 1] and "
            f"predict_proba, got classes {classes}."
        )
    if getattr(pipeline, "n_features_in_", N_FEATURES) != N_FEATURES:
        raise InvalidModelError(f"{model_path} takes {pipeline.n_features_in_} features, not 30.")
    version = str(card.get("version") or _version_from_path(folder))
    return LoadedClassifier(
        version=version,
        estimator=str(card.get("estimator", type(pipeline).__name__)),
        threshold=threshold,
        feature_names=names,
        proba=build_proba(pipeline, threshold, compile=compile),
        card=card,
    )


def _version_from_path(folder: Path) -> str:
    from assay.registry.uri import version_number

    return folder.name if version_number(folder.name) else "unversioned"


# ---------------------------------------------------------------------------------------------
# Where versions come from
# ---------------------------------------------------------------------------------------------


class FolderSource:
    """A version folder on disk (KServe's /mnt/models, or a registry version folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return str(self.folder)

    def fingerprint(self) -> str:
        card = self.folder / CARD_FILE
        model = self.folder / MODEL_FILE
        return f"{card.stat().st_mtime_ns}:{model.stat().st_mtime_ns}"

    def fetch(self) -> tuple[Path, bool]:
        """(folder, whether the caller owns it and should delete it when done)."""
        return self.folder, False


class RegistrySource:
    """``<root>/<name>/<ref>`` in an assay registry; ``ref`` may be a moving alias."""

    def __init__(self, uri: str) -> None:
        from assay.registry import open_registry, parse_model_uri

        root, self.name, self.ref = parse_model_uri(uri)
        self.registry = open_registry(root)
        self.uri = uri

    def describe(self) -> str:
        return self.uri

    def fingerprint(self) -> str:
        return self.registry.resolve(self.name, self.ref)

    def fetch(self) -> tuple[Path, bool]:
        version = self.registry.resolve(self.name, self.ref)
        dest = Path(tempfile.mkdtemp(prefix=f"assay-{self.name}-{version}-"))
        return self.registry.download(self.name, version, dest), True


def source_from_uri(uri: str) -> FolderSource | RegistrySource:
    """A version folder if ``uri`` is a local folder holding a model, else a registry URI."""
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    if "://" not in local and (Path(local) / MODEL_FILE).is_file():
        return FolderSource(Path(local).absolute())
    if "://" not in uri and not Path(uri).parent.parent.exists():
        raise InvalidModelError(
            f"{uri} is neither a folder with {MODEL_FILE} nor a registry model URI "
            "(<root>/<name>/<version or alias>)."
        )
    return RegistrySource(uri)


def load_from_source(source: FolderSource | RegistrySource, compile: bool) -> LoadedClassifier:
    folder, owned = source.fetch()
    try:
        loaded = load_folder(folder, compile=compile)
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
    return loaded


# ---------------------------------------------------------------------------------------------
# The KServe model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    proba: np.ndarray
    served: LoadedClassifier


class ClassifierModel(Model):
    """A :class:`kserve.Model` answering v2/v1 inference for the WDBC classifier."""

    def __init__(
        self,
        name: str,
        model_uri: str,
        *,
        max_batch_rows: int = 1024,
        max_batch_wait_ms: float = 0.0,
        compile: bool = True,
        reload_interval_s: float = 0.0,
        log_sample_rate: float = 0.01,
        debug_logs: bool = False,
        metrics: ServingMetrics | None = None,
    ) -> None:
        super().__init__(name)
        self.model_uri = model_uri
        self.max_batch_rows = max_batch_rows
        self.max_batch_wait_ms = max_batch_wait_ms
        self.compile = compile
        self.reload_interval_s = reload_interval_s
        self.log_sample_rate = log_sample_rate
        self.debug_logs = debug_logs
        self._metrics = metrics
        self.served: LoadedClassifier | None = None
        self._source: FolderSource | RegistrySource | None = None
        self._fingerprint: str | None = None
        self._info_labels: tuple[str, ...] | None = None
        self._runtime: _Runtime | None = None
        self.engine = True  # KServe then awaits start_engine() inside the server's event loop

    # -- pickling for KServe's --workers > 1 (spawned processes load their own copy) ---------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_metrics=None, _runtime=None, _info_labels=None, served=None, _source=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)  # the model itself loads on the worker's first request

    @property
    def metrics(self) -> ServingMetrics:
        if self._metrics is None:
            self._metrics = serving_metrics()
        return self._metrics

    @property
    def runtime(self) -> _Runtime:
        if self._runtime is None:
            self._runtime = _Runtime(self)
        return self._runtime

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        self._source = source_from_uri(self.model_uri)
        self._fingerprint = self._source.fingerprint()
        self._swap(load_from_source(self._source, self.compile))
        self.ready = True
        return self.ready

    async def start_engine(self) -> None:
        """Runs in the server's event loop: SIGHUP and the optional polling reloader."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self.runtime.schedule_reload)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / OS
            log.warning("sighup_reload_unavailable")
        if self.reload_interval_s > 0:
            self.runtime.start_polling(self.reload_interval_s)
        self.ready = self.served is not None

    def stop_engine(self) -> None:
        if self._runtime is not None:
            self._runtime.stop()
        self.ready = False

    async def reload(self) -> bool:
        """Load the version the URI points to now, if it changed; True when swapped."""
        return await self.runtime.reload()

    def _swap(self, loaded: LoadedClassifier) -> None:
        previous = self.served
        self.served = loaded  # the atomic swap: requests read self.served once per batch
        self._publish_info(loaded)
        log.info(
            "model_loaded",
            model=self.name,
            version=loaded.version,
            previous=previous.version if previous else None,
            estimator=loaded.estimator,
            threshold=loaded.threshold,
            backend=loaded.proba.backend,
        )

    def _publish_info(self, loaded: LoadedClassifier) -> None:
        self._info_labels = self.metrics.set_model_info(
            self.name, loaded.version, loaded.estimator, loaded.threshold, self._info_labels
        )

    # -- metadata ----------------------------------------------------------------------------
    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": [-1]} for name in OUTPUTS
        ]

    # -- inference ---------------------------------------------------------------------------
    async def predict(
        self,
        payload: InferRequest | dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        start = time.perf_counter()
        rid = request_id(headers, payload if isinstance(payload, InferRequest) else None)
        served = self.served
        names = served.feature_names if served else ()
        if isinstance(payload, InferRequest):
            tensor = single_input(payload, INPUT_NAME)
            matrix = tensor_to_matrix(tensor, N_FEATURES, self.max_batch_rows, names)
            outputs = selected_outputs(payload, OUTPUTS)
        else:
            matrix = rows_from_v1(payload, N_FEATURES, self.max_batch_rows)
            outputs = ["predict"]
        try:
            result = await self.runtime.batcher.submit(matrix, size=len(matrix))
        except Exception as exc:
            self.metrics.count_error("internal")
            log.error("inference_failed", model=self.name, error=repr(exc))
            raise InferenceError(f"inference failed: {type(exc).__name__}") from exc
        served = result.served
        predict = (result.proba >= served.threshold).astype(np.int64)
        confidence = np.maximum(result.proba, 1.0 - result.proba)
        self._record(predict, confidence, served, start, rid)
        if not isinstance(payload, InferRequest):
            return {"predictions": predict.tolist(), "model_version": served.version}
        arrays = {
            "predict": predict,
            "probability": result.proba.astype(np.float32),
            "confidence": confidence.astype(np.float32),
        }
        infer_outputs = [_output(name, arrays[name], payload) for name in outputs]
        return InferResponse(
            response_id=rid,
            model_name=self.name,
            model_version=served.version,
            infer_outputs=infer_outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    def _record(
        self,
        predict: np.ndarray,
        confidence: np.ndarray,
        served: LoadedClassifier,
        start: float,
        rid: str,
    ) -> None:
        metrics = self.metrics
        malignant = int(predict.sum())
        counts = {"malignant": malignant, "benign": len(predict) - malignant}
        for label, count in counts.items():
            if count:
                metrics.predictions.labels(self.name, served.version, label).inc(count)
        observe_many(metrics.confidence, confidence)
        latency = time.perf_counter() - start
        metrics.latency.observe(latency)
        self.runtime.request_log.request(
            request_id=rid,
            model=self.name,
            model_version=served.version,
            batch_size=len(predict),
            latency_ms=round(latency * 1000, 3),
            predictions=counts,
        )

    def run_batch(self, matrices: list[np.ndarray]) -> list[_Result]:
        """One model call for the rows of several requests (called by the batcher)."""
        served = self.served
        if served is None:  # a spawned REST worker process: load its copy now
            self.load()
            served = self.served
        assert served is not None
        stacked = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
        proba = served.predict(stacked)
        bounds = np.cumsum([len(matrix) for matrix in matrices])[:-1]
        return [_Result(part, served) for part in np.split(proba, bounds)]


def _output(name: str, array: np.ndarray, request: InferRequest) -> InferOutput:
    output = InferOutput(name=name, shape=[len(array)], datatype=OUTPUT_DATATYPES[name])
    if request.from_grpc:  # KServe's to_grpc cannot take numpy data with raw outputs
        output.set_data_from_numpy(array, binary_data=request.use_binary_outputs)
    else:  # to_rest encodes it, per requested output (JSON or the binary extension)
        output.data = array
    return output


class _Runtime:
    """Event-loop state of a ClassifierModel: batcher, request log, reload tasks."""

    def __init__(self, model: ClassifierModel) -> None:
        self.model = model
        self.batcher: AdaptiveBatcher[np.ndarray, _Result] = AdaptiveBatcher(
            model.run_batch,
            max_batch_size=model.max_batch_rows,
            max_wait_s=model.max_batch_wait_ms / 1000.0,
            in_thread=False,
        )
        self.request_log = RequestLog(
            "serving.classifier.requests",
            debug=model.debug_logs,
            sample_every=sample_every_from_rate(model.log_sample_rate),
        )
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def schedule_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_logged("signal"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_polling(self, interval_s: float) -> None:
        task = asyncio.get_running_loop().create_task(self._poll(interval_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self._reload_logged("poll")

    async def _reload_logged(self, trigger: str) -> None:
        try:
            await self.reload()
        except Exception as exc:
            log.error("reload_failed", trigger=trigger, error=str(exc))

    async def reload(self) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        model = self.model
        async with self._lock:
            source = model._source or source_from_uri(model.model_uri)
            fingerprint = await asyncio.to_thread(source.fingerprint)
            if fingerprint == model._fingerprint and model.served is not None:
                return False
            loaded = await asyncio.to_thread(load_from_source, source, model.compile)
            model._source, model._fingerprint = source, fingerprint
            model._swap(loaded)
            return True

    def stop(self) -> None:
        self.batcher.stop()
        for task in list(self._tasks):
            task.cancel()


class ClassifierRepository(ModelRepository):
    """KServe's model repository with a working v2 ``load``: reload the named model."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if not isinstance(model, ClassifierModel):
            raise ModelNotFound(name)
        await model.reload()
        return True


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    model_uri: str
    name: str = DEFAULT_NAME
    http_port: int = 8080
    grpc_port: int = 8081
    workers: int = 1
    max_batch_rows: int = 1024
    max_batch_wait_ms: float = 0.0
    compile: bool = True
    reload_interval_s: float = 0.0
    log_level: str = "info"
    log_sample_rate: float = 0.01
    enable_grpc: bool = True


def build_model(options: ServerOptions) -> ClassifierModel:
    model = ClassifierModel(
        options.name,
        options.model_uri,
        max_batch_rows=options.max_batch_rows,
        max_batch_wait_ms=options.max_batch_wait_ms,
        compile=options.compile,
        reload_interval_s=options.reload_interval_s,
        log_sample_rate=options.log_sample_rate,
        debug_logs=options.log_level.lower() == "debug",
    )
    model.load()
    return model


def run_server(options: ServerOptions) -> None:
    """Load the model, then serve it until SIGTERM/SIGINT (blocks)."""
    start_server_logging(options.log_level)
    model = build_model(options)
    freeze_startup_heap()
    serve_model(
        model,
        logger_name="serving.classifier",
        http_port=options.http_port,
        grpc_port=options.grpc_port,
        enable_grpc=options.enable_grpc,
        workers=options.workers,
        registered_models=ClassifierRepository(),
    )


def freeze_startup_heap() -> None:
    """Move the ~250k objects of the imports and the model out of the garbage collector's reach.

    A full collection over them takes 0.1-0.4 s, a pause every request in flight would feel
    (p99); they live as long as the process anyway.
    """
    import gc

    gc.collect()
    gc.freeze()


def build_parser() -> argparse.ArgumentParser:
    parser = server_parser(
        "python -m serving.classifier", "Serve the WDBC classifier over the v2 inference protocol."
    )
    env = os.environ.get
    parser.add_argument(
        "--model_uri",
        default=env("ASSAY_MODEL_URI", DEFAULT_MODEL_URI),
        help="version folder, or registry URI <root>/<name>/<version|alias> (env ASSAY_MODEL_URI)",
    )
    parser.add_argument(
        "--max_batch_rows",
        type=int,
        default=int(env("ASSAY_MAX_BATCH_ROWS", 1024)),
        help="largest batch a request may send; also the adaptive batch cap",
    )
    parser.add_argument(
        "--max_batch_wait_ms",
        type=float,
        default=0.0,
        help="extra time to wait for more requests before a model call",
    )
    parser.add_argument(
        "--compile",
        choices=["auto", "off"],
        default="auto",
        help="auto: ONNX Runtime where it reproduces scikit-learn; off: scikit-learn",
    )
    parser.add_argument(
        "--reload_interval",
        type=float,
        default=float(env("ASSAY_RELOAD_INTERVAL", 0)),
        help="seconds between checks of the model URI for a new version (0: off)",
    )
    add_log_arguments(parser)
    parser.set_defaults(model_name=DEFAULT_NAME)
    return parser


def options_from_args(argv: Sequence[str] | None = None) -> ServerOptions:
    args, _ = build_parser().parse_known_args(argv)
    return ServerOptions(
        model_uri=args.model_uri,
        name=args.model_name,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_batch_rows=args.max_batch_rows,
        max_batch_wait_ms=args.max_batch_wait_ms,
        compile=args.compile != "off",
        reload_interval_s=args.reload_interval,
        log_level=args.log_level,
        log_sample_rate=args.log_sample_rate,
        enable_grpc=args.enable_grpc,
    )


def main(argv: Sequence[str] | None = None) -> None:
    try:
        run_server(options_from_args(argv))
    except AssayError as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    # Run the imported module's main so pickled classes (KServe --workers > 1) resolve by name.
    from serving.classifier import main as _main

    _main()
