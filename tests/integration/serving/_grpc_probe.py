"""Talks to a classifier server over gRPC with tritonclient and prints what it saw as JSON.

Run in a child interpreter by test_serving_grpc.py: tritonclient.grpc's protobuf module and
KServe's define the same ``inference.*`` messages and cannot be imported into one process.
Usage: python _grpc_probe.py HOST:PORT MODEL ROWS.npy
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException


def tensor(values: np.ndarray, datatype: str) -> triton_grpc.InferInput:
    item = triton_grpc.InferInput("input-0", list(values.shape), datatype)
    item.set_data_from_numpy(values)
    return item


def failure(call) -> dict:
    try:
        call()
    except InferenceServerException as exc:
        return {"status": str(exc.status()), "message": exc.message()}
    return {"status": "OK", "message": ""}


def main(target: str, model: str, rows_path: str) -> None:
    rows = np.load(rows_path)
    seen: dict = {}
    with triton_grpc.InferenceServerClient(target) as client:
        seen["live"] = client.is_server_live()
        seen["ready"] = client.is_server_ready() and client.is_model_ready(model)
        seen["metadata"] = client.get_model_metadata(model, as_json=True)
        result = client.infer(model, [tensor(rows.astype(np.float32), "FP32")])
        seen["infer"] = {
            "predict": result.as_numpy("predict").tolist(),
            "predict_dtype": str(result.as_numpy("predict").dtype),
            "probability": result.as_numpy("probability").tolist(),
            "model_version": result.get_response().model_version,
        }
        only = client.infer(
            model,
            [tensor(rows[:3], "FP64")],
            outputs=[triton_grpc.InferRequestedOutput("confidence")],
        )
        seen["requested"] = {
            "names": [o.name for o in only.get_response().outputs],
            "confidence": only.as_numpy("confidence").tolist(),
        }
        bad = {
            "29 features": tensor(np.ones((1, 29), np.float32), "FP32"),
            "nan": tensor(np.full((1, 30), np.nan), "FP64"),
            "inf": tensor(np.full((1, 30), np.inf), "FP64"),
        }
        seen["bad"] = {k: failure(lambda t=t: client.infer(model, [t])) for k, t in bad.items()}
        one = tensor(rows[:1], "FP64")
        logits = [triton_grpc.InferRequestedOutput("logits")]
        seen["bad"]["unknown output"] = failure(lambda: client.infer(model, [one], outputs=logits))
        seen["bad"]["unknown model"] = failure(lambda: client.infer("nope", [one]))
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:4])
