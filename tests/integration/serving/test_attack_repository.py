"""Attack: unload (or load) a served model through the v2 repository endpoints without credentials.

Real servers on 127.0.0.1: the "hardened" classifier and the bias scorer (both started with
``--admin-token-file``) and the "cli" classifier (started without one: the endpoints are off);
the tokenless and gRPC attacks also against the dev overlay's classifier pod, run by podman from
the rendered manifests (which give the server no admin token).
gRPC calls use KServe's own generated stubs (the server's protobuf module) in this process.
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from _bias_scorer_support import MODEL as SCORER
from _serving_support import MODEL_NAME, wdbc

pytestmark = pytest.mark.integration

ROWS = wdbc()[0][:2]
BODY = {
    "inputs": [
        {"name": "input-0", "shape": [2, 30], "datatype": "FP64", "data": ROWS.ravel().tolist()}
    ]
}


def repository(url: str, model: str, action: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v2/repository/models/{model}/{action}", timeout=60, **kwargs)


def assert_still_serving(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/{MODEL_NAME}/ready").status_code == 200
    response = httpx.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=BODY)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("action", ["unload", "load"])
def test_anonymous_repository_call_is_refused_and_the_model_keeps_serving(hardened, action) -> None:
    response = repository(hardened.url, MODEL_NAME, action)
    assert response.status_code == 401, response.text
    assert "admin token" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_still_serving(hardened.url)


@pytest.mark.parametrize("action", ["unload", "load"])
def test_repository_call_with_a_wrong_token_is_refused(hardened, action) -> None:
    wrong = {"authorization": f"Bearer {hardened.admin_token}x"}
    response = repository(hardened.url, MODEL_NAME, action, headers=wrong)
    assert response.status_code == 403, response.text
    assert "admin token" in response.json()["error"]
    assert_still_serving(hardened.url)


def test_repository_endpoints_are_disabled_without_an_admin_token(tokenless_classifier) -> None:
    url = tokenless_classifier.url
    for action in ("unload", "load"):
        response = repository(url, MODEL_NAME, action, headers={"authorization": "Bearer x"})
        assert response.status_code == 403, response.text
        assert "--admin-token-file" in response.json()["error"]
    assert_still_serving(url)


def test_anonymous_unload_of_the_bias_scorer_is_refused(hardened_scorer) -> None:
    response = repository(hardened_scorer.url, SCORER, "unload")
    assert response.status_code == 401, response.text
    assert httpx.get(f"{hardened_scorer.url}/v2/models/{SCORER}/ready").status_code == 200
    assert hardened_scorer.infer(["A calm report on the weather."]).status_code == 200


def test_admin_unload_makes_readiness_say_not_ready_until_load(hardened) -> None:
    url, admin = hardened.url, hardened.admin_headers
    response = repository(url, MODEL_NAME, "unload", headers=admin)
    try:
        assert response.status_code == 200, response.text
        assert httpx.get(f"{url}/v2/health/ready").status_code == 503
        assert httpx.get(f"{url}/v2/models/{MODEL_NAME}/ready").status_code == 503
        infer = httpx.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=BODY)
        assert infer.status_code == 503 and "not ready" in infer.json()["error"]
    finally:
        loaded = repository(url, MODEL_NAME, "load", headers=admin)
    assert loaded.status_code == 200, loaded.text
    assert_still_serving(url)


def grpc_repository_call(target: str, action: str) -> grpc.RpcError | None:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            if action == "unload":
                stub.RepositoryModelUnload(
                    pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME), timeout=30
                )
            else:
                stub.RepositoryModelLoad(
                    pb.RepositoryModelLoadRequest(model_name=MODEL_NAME), timeout=30
                )
        except grpc.RpcError as exc:
            return exc
    return None


@pytest.mark.parametrize("action", ["unload", "load"])
def test_anonymous_grpc_repository_call_is_refused(guarded_classifier, action) -> None:
    """gRPC carries no admin token here: the repository RPCs are refused outright."""
    error = grpc_repository_call(guarded_classifier.grpc_target, action)
    assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED, error
    assert "REST" in error.details()
    assert_still_serving(guarded_classifier.url)
