"""v2 gRPC conformance of the classifier server, through tritonclient.grpc (a real v2 client).

The client runs in a child interpreter (_grpc_probe.py): tritonclient.grpc's protobuf module
and KServe's define the same messages and cannot share a process with other tests that import
KServe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _serving_support import MODEL_NAME, wdbc

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("_grpc_probe.py")


@pytest.fixture(scope="module")
def seen(server, tmp_path_factory) -> dict:
    rows = tmp_path_factory.mktemp("grpc") / "rows.npy"
    np.save(rows, wdbc()[0][:300])
    done = subprocess.run(
        [sys.executable, str(PROBE), server.grpc_target, MODEL_NAME, str(rows)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_grpc_health_and_metadata(seen) -> None:
    assert seen["live"] and seen["ready"]
    assert seen["metadata"]["inputs"] == [
        {"name": "input-0", "datatype": "FP32", "shape": ["-1", "30"]}
    ]
    assert [o["name"] for o in seen["metadata"]["outputs"]] == [
        "predict",
        "probability",
        "confidence",
    ]


def test_grpc_infer_matches_joblib_model(seen, registered_models) -> None:
    X = wdbc()[0][:300].astype(np.float32).astype(np.float64)
    proba = registered_models.pipeline().predict_proba(X)[:, 1]
    labels = (proba >= registered_models.card()["threshold"]).astype(int)
    assert seen["infer"]["predict"] == labels.tolist()
    assert seen["infer"]["predict_dtype"] == "int64"
    np.testing.assert_allclose(seen["infer"]["probability"], proba, atol=1e-6)
    assert seen["infer"]["model_version"] == "v1"


def test_grpc_requested_outputs(seen) -> None:
    assert seen["requested"]["names"] == ["confidence"]
    assert all(value >= 0.5 for value in seen["requested"]["confidence"])


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("29 features", "INVALID_ARGUMENT", "29 features per row"),
        ("nan", "INVALID_ARGUMENT", "non-finite values"),
        ("inf", "INVALID_ARGUMENT", "non-finite values"),
        ("unknown output", "INVALID_ARGUMENT", "logits"),
        ("unknown model", "NOT_FOUND", "nope"),
    ],
)
def test_grpc_bad_requests(seen, case, status, message) -> None:
    assert seen["bad"][case]["status"] == f"StatusCode.{status}"
    assert message in seen["bad"][case]["message"]
