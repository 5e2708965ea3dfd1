"""assay.deploy's create / canary-update / wait-until-Ready logic against a fake API.

No Kubernetes cluster exists here: FakeCustomObjectsApi (deploy_fakes.py) stands in for
kubernetes.client.CustomObjectsApi and a scripted controller writes the status KServe would.
A fake clock replaces sleeping.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_fakes import FakeClock, FakeCustomObjectsApi, becomes_ready_after, ready_status
from kubernetes.client.exceptions import ApiException

from assay.deploy import DeployError, DeploySpec, build_inference_service, deploy_model

V2 = "s3://assay-models/registry/wdbc-classifier/v2"
V3 = "s3://assay-models/registry/wdbc-classifier/v3"


def _deploy(api: FakeCustomObjectsApi, clock: FakeClock, spec: DeploySpec, **kw: Any) -> Any:
    return deploy_model(spec, api=api, clock=clock, sleep=clock.sleep, poll_s=5, **kw)


def _existing(api: FakeCustomObjectsApi, uri: str = V2, **annotations: str) -> dict[str, Any]:
    obj = build_inference_service(DeploySpec.for_model_uri(uri))
    obj["metadata"]["annotations"].update(annotations)
    obj["metadata"]["generation"] = 4
    obj["status"] = ready_status(4, created="r-1", ready="r-1")
    api.objects[("assay", "wdbc-classifier")] = obj
    return obj


def test_first_deploy_creates_the_service_with_all_traffic(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi(controller=becomes_ready_after(2))
    result = _deploy(api, clock, DeploySpec.for_model_uri(V3, canary_traffic_percent=10))
    assert result.action == "created"
    assert result.url == "http://wdbc-classifier.assay.example.com"
    created = next(body for verb, body in api.calls if verb == "create")
    assert created["spec"]["predictor"]["model"]["storageUri"] == V3 + "/"
    assert "canaryTrafficPercent" not in created["spec"]["predictor"]
    assert clock.sleeps == [5]


def test_update_patches_version_and_canary_then_waits_for_ready(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    _existing(api)
    api.controller = becomes_ready_after(4)  # reads 1 (initial get) .. 3 still loading
    result = _deploy(api, clock, DeploySpec.for_model_uri(V3, canary_traffic_percent=20))
    assert result.action == "updated" and result.canary_traffic_percent == 20
    stored = api.objects[("assay", "wdbc-classifier")]
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert stored["spec"]["predictor"]["model"]["storageUri"] == V3 + "/"
    assert stored["metadata"]["annotations"]["assay.io/model-version"] == "v3"
    assert stored["metadata"]["generation"] == 5
    assert clock.sleeps == [5, 5]
    assert [verb for verb, _ in api.calls].count("create") == 0


def test_ready_status_of_the_previous_generation_is_not_enough(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    _existing(api)

    def controller(obj: dict[str, Any], reads: int) -> None:
        # Ready=True throughout, but the controller catches up with generation 5 only later.
        obj["status"] = ready_status(4 if reads < 5 else 5)

    api.controller = controller
    _deploy(api, clock, DeploySpec.for_model_uri(V3))
    assert len(clock.sleeps) == 3


def test_canary_waits_until_the_newest_revision_itself_is_ready(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    _existing(api)

    def controller(obj: dict[str, Any], reads: int) -> None:
        # The old revision keeps the service Ready while the canary revision starts.
        gen = obj["metadata"]["generation"]
        obj["status"] = ready_status(gen, created="r-2", ready="r-1" if reads < 4 else "r-2")

    api.controller = controller
    _deploy(api, clock, DeploySpec.for_model_uri(V3, canary_traffic_percent=10))
    assert len(clock.sleeps) == 2


def test_timeout_names_the_last_condition(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi(controller=becomes_ready_after(10**6))
    _existing(api)
    with pytest.raises(DeployError) as caught:
        _deploy(api, clock, DeploySpec.for_model_uri(V3), timeout_s=30)
    message = str(caught.value)
    assert "not Ready after 30 s" in message
    assert "RevisionMissing" in message and "still loading the model" in message
    assert 30 <= clock.now <= 35


def test_a_model_that_fails_to_load_fails_fast_with_kserves_message(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    _existing(api)

    def controller(obj: dict[str, Any], reads: int) -> None:
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "conditions": [{"type": "Ready", "status": "False"}],
            "modelStatus": {
                "transitionStatus": "BlockedByFailedLoad",
                "states": {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"},
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": "model.joblib takes 29 features, not 30",
                },
            },
        }

    api.controller = controller
    with pytest.raises(DeployError, match=r"ModelLoadFailed: model\.joblib takes 29 features"):
        _deploy(api, clock, DeploySpec.for_model_uri(V3), timeout_s=600)
    assert clock.sleeps == []


def test_missing_permissions_point_at_the_deployer_role(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    _existing(api)
    api.fail_with["patch"] = ApiException(status=403, reason="Forbidden")
    with pytest.raises(DeployError, match="inferenceservice-deployer"):
        _deploy(api, clock, DeploySpec.for_model_uri(V3))


def test_missing_namespace_or_crd_is_explained(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    api.fail_with["create"] = ApiException(status=404, reason="Not Found")
    with pytest.raises(DeployError, match="namespace 'assay' or the KServe InferenceService CRD"):
        _deploy(api, clock, DeploySpec.for_model_uri(V3))


def test_unreachable_api_server_is_a_deploy_error(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    api.fail_with["get"] = ApiException(status=0, reason="Connection refused")
    api.fail_with["get"].status = None  # what urllib3-level failures look like: no HTTP status
    with pytest.raises(DeployError, match="could not read InferenceService assay/wdbc-classifier"):
        _deploy(api, clock, DeploySpec.for_model_uri(V3))


def test_canary_on_a_raw_deployment_is_refused_but_a_full_rollout_works(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi(controller=becomes_ready_after(1))
    _existing(api, **{"serving.kserve.io/deploymentMode": "RawDeployment"})
    with pytest.raises(DeployError, match="RawDeployment mode"):
        _deploy(api, clock, DeploySpec.for_model_uri(V3, canary_traffic_percent=10))
    assert not [verb for verb, _ in api.calls if verb == "patch"]
    result = _deploy(api, clock, DeploySpec.for_model_uri(V3, canary_traffic_percent=100))
    assert result.action == "updated" and result.canary_traffic_percent is None


def test_redeploying_the_same_version_is_reported_unchanged(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi(controller=becomes_ready_after(1))
    _existing(api, uri=V3)
    result = _deploy(api, clock, DeploySpec.for_model_uri(V3))
    assert result.action == "unchanged"
    assert api.objects[("assay", "wdbc-classifier")]["metadata"]["generation"] == 4
