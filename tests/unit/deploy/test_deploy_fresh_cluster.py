"""The fresh-cluster story: `kubectl apply -k` creates wdbc-classifier pointing at the version
the first training run will register, and that run's deploy step takes the service over.

No cluster here: the service object is the kustomize manifest itself, with the status KServe
reports while its storage initializer finds nothing at storageUri; FakeCustomObjectsApi
(deploy_fakes.py) stands in for the API server, a real file:// registry in tmp_path assigns
versions exactly as the s3:// one does (same Registry base class).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from deploy_fakes import FakeClock, FakeCustomObjectsApi, ready_status

from assay.classify.config import CLUSTER_REGISTRY
from assay.deploy import DeploySpec, deploy_model
from assay.deploy.spec import storage_uri_for
from assay.registry import open_registry

REPO_ROOT = Path(__file__).resolve().parents[3]
MANIFEST = REPO_ROOT / "manifests/base/serving/isvc-wdbc-classifier.yaml"
NAME = "wdbc-classifier"


def _manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def _never_loaded(obj: dict[str, Any]) -> dict[str, Any]:
    """The service as KServe leaves it when the first revision's model is not in the bucket."""
    obj = dict(obj, metadata={**obj["metadata"], "namespace": "assay", "generation": 1})
    obj["status"] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "RevisionFailed",
                "message": "storage-initializer: no objects under s3://assay-models/registry/...",
            }
        ],
        "components": {"predictor": {"latestCreatedRevision": "r-1"}},
    }
    return obj


def _ready_from_read(reads: int) -> Any:
    """Leaves the status as it is until the ``reads``-th read, then reports Ready."""

    def controller(obj: dict[str, Any], count: int) -> None:
        if count >= reads:
            obj["status"] = ready_status(obj["metadata"]["generation"])

    return controller


def test_the_manifest_names_the_version_a_first_training_run_registers(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "model.joblib").write_bytes(b"model")
    (build / "model-card.json").write_text(json.dumps({"estimator": "adaboost"}))
    first = open_registry(f"file://{tmp_path / 'registry'}").register(NAME, build)
    uri = _manifest()["spec"]["predictor"]["model"]["storageUri"]
    assert uri == storage_uri_for(CLUSTER_REGISTRY, NAME, first)


def test_first_deploy_onto_a_never_served_service_takes_all_traffic(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    api.objects[("assay", NAME)] = _never_loaded(_manifest())
    api.controller = _ready_from_read(3)
    uri = _manifest()["spec"]["predictor"]["model"]["storageUri"]
    spec = DeploySpec.for_model_uri(uri, canary_traffic_percent=10)  # the pipeline's default
    result = deploy_model(spec, api=api, clock=clock, sleep=clock.sleep, poll_s=5)
    patch = next(body for verb, body in api.calls if verb == "patch")
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] is None  # full rollout
    assert result.canary_traffic_percent is None
    stored = api.objects[("assay", NAME)]["spec"]["predictor"]
    assert "canaryTrafficPercent" not in stored and stored["model"]["storageUri"] == uri
    assert result.url == "http://wdbc-classifier.assay.example.com"


def test_a_service_that_has_served_still_gets_the_canary(clock: FakeClock) -> None:
    api = FakeCustomObjectsApi()
    served = _never_loaded(_manifest())
    served["status"]["components"]["predictor"]["latestReadyRevision"] = "r-0"
    api.objects[("assay", NAME)] = served
    api.controller = _ready_from_read(3)
    v2 = storage_uri_for(CLUSTER_REGISTRY, NAME, "v2")
    result = deploy_model(
        DeploySpec.for_model_uri(v2, canary_traffic_percent=10),
        api=api,
        clock=clock,
        sleep=clock.sleep,
        poll_s=5,
    )
    assert result.canary_traffic_percent == 10
    assert api.objects[("assay", NAME)]["spec"]["predictor"]["canaryTrafficPercent"] == 10
