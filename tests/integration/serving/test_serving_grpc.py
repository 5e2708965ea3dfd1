"""v2 gRPC conformance of the classifier server with tritonclient.grpc (a real v2 client)."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from conftest import MODEL_NAME, wdbc
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.integration


@pytest.fixture
def client(server):
    with triton_grpc.InferenceServerClient(server.grpc_target) as grpc_client:
        yield grpc_client


def test_grpc_health_and_metadata(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME)
    metadata = client.get_model_metadata(MODEL_NAME, as_json=True)
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": ["-1", "30"]}]
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "probability", "confidence"]


def test_grpc_infer_matches_joblib_model(client, registered_models) -> None:
    X = wdbc()[0][:300].astype(np.float32)
    tensor = triton_grpc.InferInput("input-0", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)
    result = client.infer(MODEL_NAME, [tensor])
    proba = registered_models.pipeline().predict_proba(X.astype(np.float64))[:, 1]
    labels = (proba >= registered_models.card()["threshold"]).astype(int)
    np.testing.assert_array_equal(result.as_numpy("predict"), labels)
    np.testing.assert_allclose(result.as_numpy("probability"), proba, atol=1e-6)
    assert result.get_response().model_version == "v1"


def test_grpc_requested_outputs(client) -> None:
    X = wdbc()[0][:3]
    tensor = triton_grpc.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)
    result = client.infer(
        MODEL_NAME, [tensor], outputs=[triton_grpc.InferRequestedOutput("confidence")]
    )
    assert [o.name for o in result.get_response().outputs] == ["confidence"]
    assert np.all(result.as_numpy("confidence") >= 0.5)


@pytest.mark.parametrize(
    ("shape", "datatype", "values", "message"),
    [
        ([1, 29], "FP32", np.ones((1, 29), np.float32), "29 features per row"),
        ([1, 30], "FP64", np.full((1, 30), np.nan), "non-finite values"),
        ([1, 30], "FP64", np.full((1, 30), np.inf), "non-finite values"),
    ],
)
def test_grpc_bad_input_is_invalid_argument(client, shape, datatype, values, message) -> None:
    tensor = triton_grpc.InferInput("input-0", shape, datatype)
    tensor.set_data_from_numpy(values)
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL_NAME, [tensor])
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert message in error.value.message()


def test_grpc_unknown_output_and_model(client) -> None:
    X = wdbc()[0][:1]
    tensor = triton_grpc.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL_NAME, [tensor], outputs=[triton_grpc.InferRequestedOutput("logits")])
    assert (
        error.value.status() == "StatusCode.INVALID_ARGUMENT" and "logits" in error.value.message()
    )
    with pytest.raises(InferenceServerException) as error:
        client.infer("nope", [tensor])
    assert error.value.status() == "StatusCode.NOT_FOUND"
