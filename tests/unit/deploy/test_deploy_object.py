"""The InferenceService assay.deploy would apply, checked against KServe's CRD schema (no
cluster here: the object and the merge patch are validated offline)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from deploy_fakes import REPO_ROOT, merge_patch

from assay.deploy import DeploySpec, build_inference_service, build_patch, storage_uri_for
from assay.errors import AssayError, UsageError

URI = "s3://assay-models/registry/wdbc-classifier/v3"


def _errors(schema: Any, obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]


def test_created_object_validates_against_the_crd(isvc_schema: Any) -> None:
    obj = build_inference_service(DeploySpec.for_model_uri(URI))
    assert _errors(isvc_schema, obj) == []
    model = obj["spec"]["predictor"]["model"]
    assert model["storageUri"] == URI + "/"  # a folder: KServe downloads by key prefix
    assert model["runtime"] == "assay-classifier"
    assert model["protocolVersion"] == "v2"
    assert obj["metadata"]["annotations"]["assay.io/model-version"] == "v3"


def test_patched_object_with_canary_validates_against_the_crd(isvc_schema: Any) -> None:
    old = build_inference_service(DeploySpec.for_model_uri(URI.replace("v3", "v2")))
    spec = DeploySpec.for_model_uri(URI, canary_traffic_percent=10)
    patched = merge_patch(old, build_patch(spec))
    assert _errors(isvc_schema, patched) == []
    assert patched["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patched["spec"]["predictor"]["model"]["storageUri"] == URI + "/"
    # the rest of the spec (runtime, resources, probes) is untouched by the patch
    assert (
        patched["spec"]["predictor"]["model"]["resources"]
        == (old["spec"]["predictor"]["model"]["resources"])
    )


def test_full_rollout_removes_the_canary_field(isvc_schema: Any) -> None:
    old = build_inference_service(DeploySpec.for_model_uri(URI.replace("v3", "v2")))
    old["spec"]["predictor"]["canaryTrafficPercent"] = 10
    patched = merge_patch(
        old, build_patch(DeploySpec.for_model_uri(URI, canary_traffic_percent=100))
    )
    assert "canaryTrafficPercent" not in patched["spec"]["predictor"]
    assert _errors(isvc_schema, patched) == []


def test_schema_check_catches_a_misspelt_field(isvc_schema: Any) -> None:
    obj = build_inference_service(DeploySpec.for_model_uri(URI))
    obj["spec"]["predictor"]["canaryTrafficPercentage"] = 10
    assert any("canaryTrafficPercentage" in e for e in _errors(isvc_schema, obj))


def test_object_matches_the_kustomize_manifest_where_it_matters() -> None:
    import yaml

    manifest = yaml.safe_load(
        (REPO_ROOT / "manifests/base/serving/isvc-wdbc-classifier.yaml").read_text()
    )
    built = build_inference_service(DeploySpec.for_model_uri(URI))
    for key in ("model",):
        want, got = manifest["spec"]["predictor"][key], built["spec"]["predictor"][key]
        for field in ("runtime", "modelFormat", "protocolVersion", "resources", "securityContext"):
            assert got[field] == want[field], field
    assert "securityContext" not in built["spec"]["predictor"]  # Knative rejects it by default
    for field in ("serviceAccountName", "volumes"):
        assert built["spec"]["predictor"][field] == manifest["spec"]["predictor"][field], field


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("file:///tmp/registry/wdbc-classifier/v3", "not an s3:// root"),
        ("s3://assay-models/registry/wdbc-classifier/production", "not an immutable version"),
        ("wdbc-classifier", "not of the form"),
    ],
)
def test_model_uris_kserve_cannot_load_are_refused(uri: str, problem: str) -> None:
    with pytest.raises(AssayError, match=problem):
        DeploySpec.for_model_uri(uri)


def test_canary_percentage_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError, match="between 0 and 100"):
        DeploySpec.for_model_uri(URI, canary_traffic_percent=150)


def test_storage_uri_follows_the_registry_layout() -> None:
    assert storage_uri_for("s3://assay-models/registry/", "wdbc-classifier", "v12") == (
        "s3://assay-models/registry/wdbc-classifier/v12/"
    )
    assert DeploySpec(storage_uri=URI, model_version="v3").storage_uri == URI + "/"
