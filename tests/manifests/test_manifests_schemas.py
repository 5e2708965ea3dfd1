"""Every kustomize target renders and every object it renders validates.

Core kinds: kubernetes-validate's schemas for Kubernetes 1.34, strict (unknown fields fail).
Custom resources: the openAPIV3Schema of their CRD from ../shared/crds, made strict the same way.
Istio's CRDs are not in ../shared/crds: its objects (the bias scorer's AuthorizationPolicy) are
checked for their structure and meaning in test_manifests_callers.py instead.
"""

from __future__ import annotations

import pytest
from manifest_support import TARGETS, core_errors, crd_errors, crd_schema, find, render

pytestmark = pytest.mark.manifests

CUSTOM_GROUPS = ("serving.kserve.io/", "monitoring.coreos.com/", "ray.io/")
UNVALIDATED_GROUPS = ("security.istio.io/",)  # no CRD schema here: test_manifests_callers.py


def test_every_target_renders_objects_in_namespace_assay(target: str) -> None:
    objs = render(target)
    assert len(objs) >= 20
    for obj in objs:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "assay", f"{obj['kind']} {obj['metadata']}"
    find(objs, "Namespace", "assay")


def test_root_kustomization_deploys_the_dev_overlay() -> None:
    assert render("root") == render("dev")


def test_core_objects_validate_against_kubernetes_schemas(target: str) -> None:
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": core_errors(o)
        for o in render(target)
        if not o["apiVersion"].startswith(CUSTOM_GROUPS + UNVALIDATED_GROUPS)
    }
    assert problems, "no core objects rendered"
    assert {k: v for k, v in problems.items() if v} == {}


def test_custom_resources_validate_against_their_crds(target: str) -> None:
    customs = [o for o in render(target) if o["apiVersion"].startswith(CUSTOM_GROUPS)]
    kinds = {o["kind"] for o in customs}
    expected = {"InferenceService", "ServingRuntime", "PodMonitor", "PrometheusRule", "RayCluster"}
    assert expected <= kinds
    problems = {}
    for obj in customs:
        try:
            crd_schema(obj["apiVersion"], obj["kind"])
        except KeyError:
            pytest.fail(f"no CRD in ../shared/crds serves {obj['apiVersion']} {obj['kind']}")
        problems[f"{obj['kind']}/{obj['metadata']['name']}"] = crd_errors(obj)
    assert {k: v for k, v in problems.items() if v} == {}


def test_crd_validation_rejects_typos_and_wrong_types() -> None:
    isvc = find(render("prod"), "InferenceService", "wdbc-classifier")
    isvc["spec"]["predictor"]["minReplica"] = 2  # typo: the API server would silently drop it
    isvc["spec"]["predictor"]["maxReplicas"] = "ten"
    errors = crd_errors(isvc)
    assert any("minReplica" in e for e in errors)
    assert any("maxReplicas" in e for e in errors)


def test_core_validation_rejects_unknown_fields() -> None:
    deployment = find(render("dev"), "Deployment", "minio")
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert core_errors(deployment)


def test_the_sklearnserver_variant_names_the_stock_runtime_and_its_format() -> None:
    import yaml
    from manifest_support import require_crds

    runtime = yaml.safe_load((require_crds() / "kserve-sklearnserver-runtime.yaml").read_text())
    model = find(render("dev-sklearnserver"), "InferenceService", "wdbc-classifier")["spec"][
        "predictor"
    ]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] == "kserve-sklearnserver"
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]


def test_all_targets_are_listed() -> None:
    overlays = {p.name for p in (TARGETS["dev"].parent).iterdir() if p.is_dir()}
    assert overlays <= set(TARGETS)
