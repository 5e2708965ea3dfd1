"""A client for the classifier's v2 inference endpoint, on KServe's own inference clients.

``http(s)://host:port`` talks v2 REST (``kserve.InferenceRESTClient``), ``grpc(s)://host:port``
v2 gRPC (``kserve.InferenceGRPCClient``). Both are asynchronous; this client runs them on an
event loop of its own, so callers stay synchronous.

>>> client = ClassifierClient("http://127.0.0.1:8080")             # doctest: +SKIP
>>> client.predict(rows)              # rows: [n, 30] in FEATURE_NAMES order  # doctest: +SKIP
Predictions(predict=array([1, 0, ...]), probability=..., confidence=..., model_version='v3')
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd

from assay.data.wdbc import FEATURE_NAMES
from assay.errors import AssayError, DataValidationError, UsageError

if TYPE_CHECKING:
    from kserve import InferResponse

DEFAULT_MODEL = "wdbc-classifier"
OUTPUTS = ("predict", "probability", "confidence")
REST_SCHEMES = ("http", "https")
GRPC_SCHEMES = ("grpc", "grpcs")


class PredictionError(AssayError):
    """The server could not be reached, timed out or refused the request (its message is
    included)."""

    exit_code = 1


@dataclass(frozen=True)
class Predictions:
    predict: np.ndarray  # int64, 1 = malignant
    probability: np.ndarray  # float32, P(malignant)
    confidence: np.ndarray  # float32, max(p, 1 - p)
    model_version: str

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "prediction": ["malignant" if p else "benign" for p in self.predict],
                "predict": self.predict,
                "probability": self.probability,
                "confidence": self.confidence,
            }
        )


@dataclass(frozen=True)
class Endpoint:
    """Where the server is: ``scheme://host:port``, REST or gRPC by the scheme."""

    scheme: str
    netloc: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in REST_SCHEMES + GRPC_SCHEMES or not parts.netloc:
            raise UsageError(
                f"--url {url!r} is not an http(s)://host[:port] (v2 REST) or "
                "grpc(s)://host:port (v2 gRPC) address."
            )
        if parts.path not in ("", "/"):
            raise UsageError(f"--url {url!r} has a path; give only scheme, host and port.")
        if parts.scheme in GRPC_SCHEMES and parts.port is None:
            raise UsageError(f"--url {url!r} needs the gRPC port, e.g. grpc://host:8081.")
        return cls(parts.scheme, parts.netloc)

    @property
    def grpc(self) -> bool:
        return self.scheme in GRPC_SCHEMES

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


class ClassifierClient:
    """Sends [n, 30] rows as ``input-0`` and reads ``predict``/``probability``/``confidence``."""

    def __init__(self, url: str, model: str = DEFAULT_MODEL, timeout_s: float = 30.0) -> None:
        self.endpoint = Endpoint.parse(url)
        self.model = model
        self.timeout_s = timeout_s
        self._runner = asyncio.Runner()
        # grpc.aio binds a channel to the loop it is made on: make both clients on ours.
        self._client = self._runner.run(self._open())

    async def _open(self) -> Any:
        _import_kserve()
        from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig

        _quiet_kserve_trace()
        if self.endpoint.grpc:
            return InferenceGRPCClient(
                self.endpoint.netloc,
                use_ssl=self.endpoint.scheme == "grpcs",
                timeout=self.timeout_s,
                retries=0,
            )
        return InferenceRESTClient(RESTConfig(protocol="v2", timeout=self.timeout_s))

    def predict(self, rows: np.ndarray, batch_rows: int = 256) -> Predictions:
        """Predictions for every row, sent in requests of at most ``batch_rows`` rows."""
        matrix = np.asarray(rows, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != 30 or len(matrix) == 0:
            raise DataValidationError(f"need a non-empty [rows, 30] table, got {matrix.shape}.")
        parts = [
            self._predict_batch(matrix[start : start + batch_rows])
            for start in range(0, len(matrix), batch_rows)
        ]
        return Predictions(
            predict=np.concatenate([p.predict for p in parts]),
            probability=np.concatenate([p.probability for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            model_version=parts[-1].model_version,
        )

    def _predict_batch(self, matrix: np.ndarray) -> Predictions:
        from kserve import InferInput, InferRequest
        from kserve.protocol.infer_type import RequestedOutput

        tensor = InferInput("input-0", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=True)
        request = InferRequest(
            self.model, [tensor], request_outputs=[RequestedOutput(name) for name in OUTPUTS]
        )
        response = self._runner.run(self._infer(request))
        outputs = {output.name: output for output in response.outputs}
        missing = [name for name in OUTPUTS if name not in outputs]
        if missing:
            raise PredictionError(f"the server's answer lacks the outputs {missing}.")
        return Predictions(
            predict=outputs["predict"].as_numpy(),
            probability=outputs["probability"].as_numpy(),
            confidence=outputs["confidence"].as_numpy(),
            model_version=str(response.model_version or ""),
        )

    async def _infer(self, request: Any) -> InferResponse:
        _IN_CALL.set(True)  # this task's own context: see _OwnCallsFilter
        try:
            if self.endpoint.grpc:
                return await self._client.infer(request)
            return await self._infer_rest(request)
        except Exception as exc:
            raise self._explained(exc) from exc

    async def _infer_rest(self, request: Any) -> InferResponse:
        from kserve import InferResponse

        # The v2 path of InferenceRESTClient.infer reads the answer with InferResponse.from_bytes,
        # which drops model_version; given the endpoint's full URL it returns the JSON body as is.
        url = f"{self.endpoint.url}/v2/models/{self.model}/infer"
        body = await self._client.infer(url, request, is_graph_endpoint=True)
        return InferResponse.from_rest(body)

    def _explained(self, exc: Exception) -> Exception:
        """The client's exception as one sentence for a person (other exceptions unchanged)."""
        import grpc

        where = self.endpoint.url
        if isinstance(exc, httpx.HTTPStatusError):
            return PredictionError(_refusal(exc.response.status_code, _error_text(exc.response)))
        if isinstance(exc, httpx.TimeoutException):
            return PredictionError(f"{where} did not answer within {self.timeout_s:g} s.")
        if isinstance(exc, httpx.TransportError):
            return PredictionError(f"cannot reach the inference server at {where}: {exc}")
        if isinstance(exc, grpc.aio.AioRpcError):
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return PredictionError(f"{where} did not answer within {self.timeout_s:g} s.")
            if code == grpc.StatusCode.UNAVAILABLE:
                return PredictionError(
                    f"cannot reach the inference server at {where}: {exc.details()}"
                )
            return PredictionError(f"the server refused the request: {code.name}: {exc.details()}")
        return exc

    def close(self) -> None:
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def __enter__(self) -> ClassifierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_kserve() -> None:
    """Import kserve with an empty command line: ``kserve.model_server`` parses ``sys.argv``
    for the server's flags when it is imported, and argparse's prefix matching reads
    ``assay predict --timeout 1.5`` as ``--timeout-keep-alive 1.5`` (not an int: exit 2)."""
    if "kserve" in sys.modules:
        return
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve  # noqa: F401
    finally:
        sys.argv = argv


_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("assay_client_call", default=False)


class _OwnCallsFilter(logging.Filter):
    """Drops what KServe's clients log during this client's calls: a failed call is logged with
    its traceback on ``kserve.trace`` (which reaches stderr through the root logger), and the
    caller gets it as a PredictionError instead. Other records on that logger pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _IN_CALL.get()


def _quiet_kserve_trace() -> None:
    trace = logging.getLogger("kserve.trace")
    if not any(isinstance(f, _OwnCallsFilter) for f in trace.filters):
        trace.addFilter(_OwnCallsFilter())


def _refusal(status: int, error: str) -> str:
    if status >= 500:
        return f"the server failed the request (HTTP {status}): {error}"
    return f"the server refused the request (HTTP {status}): {error}"


def _error_text(response: Any) -> str:
    """A v2 error body's ``error`` field, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return str(response.text[:300]) or response.reason_phrase


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The [n, 30] matrix of a table: its FEATURE_NAMES columns in order, or 30 numeric columns."""
    if all(name in frame.columns for name in FEATURE_NAMES):
        selected = frame[list(FEATURE_NAMES)]
    elif frame.shape[1] == len(FEATURE_NAMES):
        selected = frame
    else:
        missing = [name for name in FEATURE_NAMES if name not in frame.columns]
        raise DataValidationError(
            f"the table has {frame.shape[1]} columns and lacks {len(missing)} of the 30 WDBC "
            f"feature columns (first missing: {missing[:3]})."
        )
    non_numeric = [str(c) for c in selected.columns if selected[c].dtype.kind not in "fiub"]
    if non_numeric:
        raise DataValidationError(f"non-numeric feature columns: {non_numeric[:5]}.")
    return selected.to_numpy(dtype="float64")
