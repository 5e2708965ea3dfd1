"""Pieces every assay model server shares (classifier, bias scorer).

- :class:`BadRequest` and the tensor checks: a client mistake becomes a 400 (REST) or
  INVALID_ARGUMENT (gRPC) with a sentence naming the problem, and an ``inference_errors_total``
  increment with a short ``reason`` label.
- :class:`AdaptiveBatcher`: concurrent requests share one model call.
- :class:`RequestLog`: one structlog line per request at debug, a sample of them at info.
- :func:`install_http_extras`: ``/health``, JSON error handlers and quiet per-request loggers on
  KServe's FastAPI app.
- Entry-point pieces: :func:`start_server_logging`, :func:`serve_model`, :func:`server_parser`
  and :func:`add_log_arguments`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics

NUMERIC_DATATYPES: dict[str, Any] = {
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}


class BadRequest(InvalidInput):
    """A request the client got wrong; ``reason`` is the metric label, the text is the message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = reason


# ---------------------------------------------------------------------------------------------
# Request validation
# ---------------------------------------------------------------------------------------------


def single_input(request: InferRequest, expected_name: str) -> InferInput:
    """The request's only input tensor, which must be called ``expected_name``."""
    names = [tensor.name for tensor in request.inputs]
    if len(names) != 1:
        raise BadRequest(
            f"expected exactly one input tensor named {expected_name!r}, got {len(names)}: {names}",
            "wrong_inputs",
        )
    if names[0] != expected_name:
        raise BadRequest(
            f"unknown input {names[0]!r}: this model takes one input named {expected_name!r}",
            "wrong_inputs",
        )
    return request.inputs[0]


def check_batch_rows(rows: int, max_rows: int, what: str = "batch") -> None:
    if rows == 0:
        raise BadRequest(f"empty {what}: send at least one row", "empty_batch")
    if rows > max_rows:
        raise BadRequest(
            f"{what} of {rows} rows is over this server's cap of {max_rows} rows; "
            "split it into smaller requests",
            "batch_too_large",
        )


def tensor_to_matrix(
    tensor: InferInput, n_features: int, max_rows: int, feature_names: Sequence[str] = ()
) -> np.ndarray:
    """A validated float64 ``[rows, n_features]`` matrix from a v2 input tensor.

    Checks, in order: numeric datatype, 2-D shape with ``n_features`` columns, row count
    (non-empty, at most ``max_rows``), value count matching the shape, numeric and finite values.
    """
    datatype = tensor.datatype.upper()
    if datatype not in NUMERIC_DATATYPES:
        raise BadRequest(
            f"input {tensor.name!r} has datatype {datatype}; send FP32, FP64 or an INT type",
            "wrong_datatype",
        )
    shape = list(tensor.shape)
    if len(shape) != 2 or any(not isinstance(dim, int) or dim < 0 for dim in shape):
        raise BadRequest(
            f"input {tensor.name!r} has shape {shape}; expected [rows, {n_features}]",
            "wrong_shape",
        )
    if shape[1] != n_features:
        raise BadRequest(
            f"input {tensor.name!r} has {shape[1]} features per row; this model needs "
            f"{n_features} (shape [rows, {n_features}])",
            "wrong_feature_count",
        )
    check_batch_rows(shape[0], max_rows)
    matrix = _decode_values(tensor, datatype, shape)
    check_finite(matrix, tensor.name, feature_names)
    return matrix


def _decode_values(tensor: InferInput, datatype: str, shape: list[int]) -> np.ndarray:
    expected = shape[0] * shape[1]
    raw = tensor._raw_data  # binary (gRPC raw_input_contents / REST binary extension)
    try:
        if raw is not None:
            flat = np.frombuffer(raw, dtype=NUMERIC_DATATYPES[datatype])
        else:
            flat = None if tensor.data is None else np.asarray(tensor.data).ravel()
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            f"input {tensor.name!r} has non-numeric values ({exc}); send numbers only",
            "non_numeric",
        ) from None
    if flat is not None and flat.size and flat.dtype.kind not in "fiub":
        raise BadRequest(
            f"input {tensor.name!r} has non-numeric values; send numbers only", "non_numeric"
        )
    if flat is None or flat.size != expected:
        got = 0 if flat is None else flat.size
        raise BadRequest(
            f"input {tensor.name!r} has {got} values but shape {shape} needs {expected}",
            "wrong_shape",
        )
    return flat.astype(np.float64, copy=False).reshape(shape)


def check_finite(matrix: np.ndarray, name: str, feature_names: Sequence[str] = ()) -> None:
    finite = np.isfinite(matrix)
    if finite.all():
        return
    row, col = (int(i) for i in np.argwhere(~finite)[0])
    feature = f" ({feature_names[col]!r})" if col < len(feature_names) else ""
    raise BadRequest(
        f"input {name!r} has {int((~finite).sum())} non-finite values (NaN or infinity), "
        f"the first at row {row}, column {col}{feature}",
        "non_finite",
    )


def rows_from_v1(payload: Any, n_features: int, max_rows: int) -> np.ndarray:
    """A validated matrix from a v1 ``{"instances": [[...], ...]}`` body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest(
            'a v1 request body is {"instances": [[feature values], ...]}', "malformed_request"
        )
    instances = payload["instances"]
    if not isinstance(instances, list) or not all(isinstance(row, list) for row in instances):
        raise BadRequest('"instances" must be a list of rows (lists of numbers)', "wrong_shape")
    check_batch_rows(len(instances), max_rows, "instances list")
    widths = {len(row) for row in instances}
    if widths != {n_features}:
        raise BadRequest(
            f"every instance needs {n_features} feature values; got rows of length "
            f"{sorted(widths)}",
            "wrong_feature_count",
        )
    try:
        matrix = np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"instances have non-numeric values ({exc})", "non_numeric") from None
    check_finite(matrix, "instances")
    return matrix


def selected_outputs(request: InferRequest, known: Sequence[str]) -> list[str]:
    """Names of the outputs to return: the requested ones (checked) or all of them."""
    if not request.request_outputs:
        return list(known)
    names = [output.name for output in request.request_outputs]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadRequest(
            f"unknown output(s) {unknown}; this model returns {list(known)}", "unknown_output"
        )
    return names


def request_id(headers: dict[str, str] | None, request: Any = None) -> str:
    rid = getattr(request, "id", None)
    if not rid and headers:
        rid = headers.get("x-request-id")
    return str(rid) if rid else uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# Adaptive batching
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    size: int
    future: asyncio.Future[R] = field(repr=False)


class AdaptiveBatcher(Generic[T, R]):
    """Gathers items submitted concurrently and hands them to ``run_batch`` in one call.

    Adaptive: a batch is whatever queued up while the previous call ran (nothing waits when the
    server is idle), optionally topped up for ``max_wait_s``, and capped at ``max_batch_size``
    (the sum of the items' sizes; one item over the cap still runs, alone). ``run_batch`` gets
    the items in order and returns one result per item; it runs on the event loop, or in the
    default thread pool with ``in_thread=True`` (for calls long enough to stall the loop).
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_wait_s: float = 0.0,
        in_thread: bool = False,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.in_thread = in_thread
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T, size: int = 1) -> R:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, size, future))
        return await future

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def _work(self, queue: asyncio.Queue[_Pending[T, R]]) -> None:
        while True:
            batch = await self._collect(queue)
            await self._execute(batch)

    async def _collect(self, queue: asyncio.Queue[_Pending[T, R]]) -> list[_Pending[T, R]]:
        batch = [await queue.get()]
        size = batch[0].size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            if queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                pending = queue.get_nowait()
            if size + pending.size > self.max_batch_size:
                queue.put_nowait(pending)  # goes to the back; fine for a rare oversize item
                break
            batch.append(pending)
            size += pending.size
        return batch

    async def _execute(self, batch: list[_Pending[T, R]]) -> None:
        live = [pending for pending in batch if not pending.future.done()]
        if not live:
            return
        items = [pending.item for pending in live]
        try:
            if self.in_thread:
                results = await asyncio.get_running_loop().run_in_executor(
                    None, self.run_batch, items
                )
            else:
                results = self.run_batch(items)
        except Exception as exc:  # every caller of the batch gets the failure
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(live)
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)


# ---------------------------------------------------------------------------------------------
# Request logging
# ---------------------------------------------------------------------------------------------


class RequestLog:
    """One JSON line per request at debug level; every ``sample_every``-th request at info.

    Callers pass counts and timings only, never feature values (they are patient data).
    """

    def __init__(self, logger_name: str, *, debug: bool, sample_every: int) -> None:
        self.log = get_logger(logger_name)
        self.debug = debug
        self.sample_every = max(1, sample_every)
        self._count = 0

    def request(self, **fields: Any) -> None:
        self._count += 1
        if self.debug:
            self.log.debug("inference_request", **fields)
        elif self._count % self.sample_every == 0:
            self.log.info("inference_request", sampled_1_in=self.sample_every, **fields)


def sample_every_from_rate(rate: float) -> int:
    """0.01 -> log 1 request in 100 at info; 0 disables sampled info lines (in practice)."""
    return 10**9 if rate <= 0 else max(1, round(1 / min(rate, 1.0)))


# ---------------------------------------------------------------------------------------------
# HTTP extras on KServe's FastAPI app
# ---------------------------------------------------------------------------------------------


def install_http_extras(app: Any, metrics: ServingMetrics, logger_name: str) -> None:
    """Add ``/health``, 4xx JSON handlers for client errors, and quiet per-request loggers.

    Must run before the server starts (KServe's ``ModelServer.start``).
    """
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    log = get_logger(logger_name)

    if not any(getattr(route, "path", None) == "/health" for route in app.routes):

        async def health() -> dict[str, str]:
            return {"status": "alive"}

        app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)

    async def bad_request(_request: Any, exc: Exception) -> Any:
        reason = getattr(exc, "code", "invalid_input")
        metrics.count_error(reason)
        log.info("request_rejected", reason=reason, error=str(exc))
        return JSONResponse(status_code=400, content={"error": str(exc)})

    async def invalid_body(_request: Any, exc: Exception) -> Any:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        if any(error.get("type") == "json_invalid" for error in errors):
            metrics.count_error("malformed_json")
            detail = errors[0].get("ctx", {}).get("error", "") if errors else ""
            return JSONResponse(
                status_code=400, content={"error": f"malformed JSON in request body: {detail}"}
            )
        metrics.count_error("malformed_request")
        problems = "; ".join(_describe(error) for error in _schema_errors(errors)[:5])
        return JSONResponse(
            status_code=422,
            content={"error": f"request body is not a valid v2 inference request: {problems}"},
        )

    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_middleware(DefaultJsonContentType)
    for noisy in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _describe(error: dict[str, Any]) -> str:
    parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "InferenceRequest")]
    return f"{'.'.join(parts) or 'body'}: {error.get('msg', 'invalid')}"


def _schema_errors(errors: list[Any]) -> list[Any]:
    """Drop the noise of KServe's ``InferenceRequest | bytes`` body union (the bytes branch)."""
    relevant = [error for error in errors if "bytes" not in error.get("loc", ())]
    return relevant or errors


class DefaultJsonContentType:
    """Treat an inference POST without a JSON content type (``curl -d``) as JSON.

    KServe reads such a body as the binary tensor extension and answers with a message about a
    missing ``inference-header-content-length`` header; a binary request keeps that header.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            path = scope.get("path", "")
            if path.endswith("/infer") or path.endswith(":predict"):
                headers = dict(scope.get("headers") or [])
                content_type = headers.get(b"content-type", b"")
                binary = b"inference-header-content-length" in headers
                if not binary and b"json" not in content_type:
                    headers[b"content-type"] = b"application/json"
                    scope = {**scope, "headers": list(headers.items())}
        await self.app(scope, receive, send)


def disable_created_series() -> None:
    """Drop prometheus_client's ``*_created`` samples (noise for the alert rules)."""
    try:
        from prometheus_client import disable_created_metrics

        disable_created_metrics()
    except ImportError:  # pragma: no cover - older prometheus_client
        pass


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def start_server_logging(level: str) -> None:
    """JSON logs at ``level`` and no ``*_created`` series: how every server process starts."""
    from assay.obs.logging import configure_logging

    configure_logging(level=level, json=True)
    disable_created_series()


def serve_model(
    model: Any,
    *,
    logger_name: str,
    http_port: int,
    grpc_port: int,
    enable_grpc: bool,
    workers: int = 1,
    registered_models: Any = None,
) -> None:
    """Install the HTTP extras on KServe's app, then serve ``model`` until SIGTERM (blocks)."""
    from kserve import ModelServer
    from kserve.model_server import app

    install_http_extras(app, model.metrics, logger_name)
    server = ModelServer(
        http_port=http_port,
        grpc_port=grpc_port,
        workers=workers,
        enable_grpc=enable_grpc,
        enable_latency_logging=False,
        registered_models=registered_models,
    )
    server.start([model])


def server_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser that accepts KServe's shared server arguments (ports, workers, model name...)."""
    from kserve.model_server import parser as kserve_parser

    return argparse.ArgumentParser(prog=prog, parents=[kserve_parser], description=description)


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log_level`` (env ASSAY_LOG_LEVEL) and ``--log_sample_rate``."""
    parser.add_argument(
        "--log_level",
        default=os.environ.get("ASSAY_LOG_LEVEL", "info"),
        help="debug logs every request; info logs a sample",
    )
    parser.add_argument(
        "--log_sample_rate", type=float, default=0.01, help="share of requests logged at info level"
    )
