"""A client for the classifier's v2 inference endpoint, on tritonclient's HTTP v2 client.

>>> client = ClassifierClient("http://127.0.0.1:8080")             # doctest: +SKIP
>>> client.predict(rows)              # rows: [n, 30] in FEATURE_NAMES order  # doctest: +SKIP
Predictions(predict=array([1, 0, ...]), probability=..., confidence=..., model_version='v3')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from assay.data.wdbc import FEATURE_NAMES
from assay.errors import AssayError, DataValidationError, UsageError

DEFAULT_MODEL = "wdbc-classifier"
OUTPUTS = ("predict", "probability", "confidence")


class PredictionError(AssayError):
    """The server could not be reached or refused the request (its message is included)."""

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


class ClassifierClient:
    """Sends [n, 30] rows as ``input-0`` and reads ``predict``/``probability``/``confidence``."""

    def __init__(self, url: str, model: str = DEFAULT_MODEL, timeout_s: float = 30.0) -> None:
        import tritonclient.http as triton_http

        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--url {url!r} is not an http(s)://host[:port] address.")
        if parts.path not in ("", "/"):
            raise UsageError(f"--url {url!r} has a path; give only scheme, host and port.")
        self.model = model
        self._client = triton_http.InferenceServerClient(
            parts.netloc,
            ssl=parts.scheme == "https",
            connection_timeout=timeout_s,
            network_timeout=timeout_s,
        )

    def metadata(self) -> dict[str, Any]:
        return dict(self._call(self._client.get_model_metadata, self.model))

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
        import tritonclient.http as triton_http

        tensor = triton_http.InferInput("input-0", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=True)
        outputs = [triton_http.InferRequestedOutput(name, binary_data=True) for name in OUTPUTS]
        result = self._call(self._client.infer, self.model, [tensor], outputs=outputs)
        return Predictions(
            predict=result.as_numpy("predict"),
            probability=result.as_numpy("probability"),
            confidence=result.as_numpy("confidence"),
            model_version=str(result.get_response().get("model_version") or ""),
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            return method(*args, **kwargs)
        except InferenceServerException as exc:
            raise PredictionError(f"the server refused the request: {exc.message()}") from exc
        except OSError as exc:
            raise PredictionError(f"cannot reach the inference server: {exc}") from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ClassifierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
