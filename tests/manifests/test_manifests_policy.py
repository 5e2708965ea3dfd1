"""Policy checks on the rendered manifests: security contexts, limits, probes, image tags,
secrets, autoscaling and access control -- what a reviewer would otherwise check by eye."""

from __future__ import annotations

import re
from typing import Any

import pytest
from manifest_support import REPO_ROOT, find, pod_specs, render

from assay.config import PIPELINE_IMAGE

pytestmark = pytest.mark.manifests

IMAGE_RE = re.compile(r"^[a-z0-9.\-/:]+:[A-Za-z0-9_.\-]+$")
SERVER_NAMES = ("wdbc-classifier", "bias-scorer")


def _containers(target: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod spec, container) for every container of every pod the target creates."""
    out = []
    for obj in render(target):
        for where, pod in pod_specs(obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                out.append((f"{where}/{container.get('name')}", pod, container))
    return out


def test_every_pod_runs_non_root_with_a_hardened_container(target: str) -> None:
    containers = _containers(target)
    assert len(containers) >= 6
    for where, pod, container in containers:
        pod_ctx, ctx = pod.get("securityContext", {}), container.get("securityContext", {})
        assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, where
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        assert isinstance(uid, int) and uid > 0, f"{where}: runAsUser {uid!r}"
        assert ctx.get("allowPrivilegeEscalation") is False, where
        assert ctx.get("readOnlyRootFilesystem") is True, where
        assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", where


def test_read_only_containers_get_a_writable_tmp(target: str) -> None:
    for where, pod, container in _containers(target):
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{where}: no /tmp mount on a read-only root filesystem"
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_every_container_has_cpu_and_memory_requests_and_limits(target: str) -> None:
    for where, _pod, container in _containers(target):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


def test_images_are_pinned_and_named_in_one_place(target: str) -> None:
    images = {c["image"] for _w, _p, c in _containers(target) if "image" in c}
    for image in images:
        assert IMAGE_RE.match(image), f"{image} has no explicit tag"
        assert not image.endswith(":latest"), image
    assert PIPELINE_IMAGE in images
    text = "\n".join(p.read_text() for p in (REPO_ROOT / "manifests").rglob("*.yaml"))
    assert ":latest" not in text
    # Manifests say `image: assay`; only kustomize `images:` names registry and tag.
    assert "ghcr.io/assay-ml/assay" not in text.replace(
        (REPO_ROOT / "manifests/base/kustomization.yaml").read_text(), ""
    )


def test_prod_defines_no_secrets_and_no_inline_credentials() -> None:
    objs = render("prod") + render("prod-raw-hpa")
    assert not [o for o in objs if o["kind"] == "Secret"]
    for where, _pod, container in _containers("prod"):
        for env in container.get("env", []):
            if re.search(r"KEY|SECRET|PASSWORD|TOKEN", env["name"]):
                assert "valueFrom" in env and "value" not in env, f"{where}: {env['name']}"
    for path in (REPO_ROOT / "manifests/overlays/prod").rglob("*.yaml"):
        assert "secretGenerator" not in path.read_text(), path


def test_dev_generates_the_secrets_the_manifests_reference() -> None:
    objs = render("dev")
    minio = find(objs, "Secret", "minio-credentials")
    assert set(minio["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    serving = find(objs, "Secret", "minio-serving-credentials")
    assert set(serving["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    root = find(objs, "Secret", "minio-root-credentials")
    assert set(root["data"]) == {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    keys = find(objs, "Secret", "llm-provider-keys")
    assert set(keys["data"]) == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY"}


def test_kserve_service_account_carries_the_s3_annotations_and_secret(target: str) -> None:
    objs = render(target)
    account = find(objs, "ServiceAccount", "kserve-s3")
    annotations = account["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-endpoint"] == "minio.assay.svc:9000"
    assert annotations["serving.kserve.io/s3-usehttps"] == "0"
    assert annotations["serving.kserve.io/s3-region"]
    # MinIO's read-only serving user, not the pipeline's user or root (issue 14, item 9)
    assert {"name": "minio-serving-credentials"} in account["secrets"]
    isvc = find(objs, "InferenceService", "wdbc-classifier")
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "kserve-s3"


def _probe_paths(container: dict[str, Any]) -> tuple[str, str]:
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert ready["port"] == live["port"] == 8080
    return ready["path"], live["path"]


def test_servers_have_v2_health_probes_and_the_classifier_its_resources(target: str) -> None:
    objs = render(target)
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]["containers"][0]
    model = find(objs, "InferenceService", "wdbc-classifier")["spec"]["predictor"]["model"]
    scorer = find(objs, "InferenceService", "bias-scorer")["spec"]["predictor"]["containers"][0]
    for container in (runtime, model, scorer):
        assert _probe_paths(container) == ("/v2/health/ready", "/v2/health/live")
    for resources in (runtime["resources"], model["resources"]):
        assert resources == {
            "requests": {"cpu": "500m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }


def test_prod_autoscales_serverless_with_at_least_two_classifiers() -> None:
    objs = render("prod")
    for name in SERVER_NAMES:
        isvc = find(objs, "InferenceService", name)
        predictor = isvc["spec"]["predictor"]
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
        assert predictor["scaleMetric"] in {"concurrency", "rps"}
        assert predictor["scaleTarget"] > 0
        assert 1 <= predictor["minReplicas"] < predictor["maxReplicas"]
    classifier = find(objs, "InferenceService", "wdbc-classifier")["spec"]["predictor"]
    assert classifier["minReplicas"] >= 2


def test_raw_deployment_variant_uses_hpa_on_cpu() -> None:
    for name in SERVER_NAMES:
        isvc = find(render("prod-raw-hpa"), "InferenceService", name)
        annotations = isvc["metadata"]["annotations"]
        assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
        assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
        assert "autoscaling.knative.dev/class" not in annotations
        assert isvc["spec"]["predictor"]["scaleMetric"] == "cpu"
    classifier = find(render("prod-raw-hpa"), "InferenceService", "wdbc-classifier")
    assert classifier["spec"]["predictor"]["minReplicas"] >= 2


def test_network_policies_fence_the_servers_and_minio(target: str) -> None:
    objs = render(target)
    servers = find(objs, "NetworkPolicy", "inference-servers-ingress")["spec"]
    selected = servers["podSelector"]["matchExpressions"][0]
    assert selected["key"] == "serving.kserve.io/inferenceservice"
    assert set(selected["values"]) == set(SERVER_NAMES)
    allowed = str(servers["ingress"])
    assert "istio-system" in allowed and "knative-serving" in allowed and "prometheus" in allowed
    minio = find(objs, "NetworkPolicy", "minio-ingress")["spec"]
    assert minio["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "minio"}
    sources = str(minio["ingress"])
    assert "serving.kserve.io/inferenceservice" in sources
    assert "pipelines.kubeflow.org/v2_component" in sources
    assert "prometheus" not in sources and "istio" not in sources


def test_deployer_role_is_least_privilege(target: str) -> None:
    objs = render(target)
    role = find(objs, "Role", "inferenceservice-deployer")
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["serving.kserve.io"]
        assert set(rule["resources"]) <= {"inferenceservices", "inferenceservices/status"}
        assert "*" not in rule["verbs"] and "delete" not in rule["verbs"]
    assert not [o for o in objs if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    binding = find(objs, "RoleBinding", "inferenceservice-deployer")
    assert binding["roleRef"]["name"] == "inferenceservice-deployer"
    subjects = binding["subjects"]
    assert {"kind": "ServiceAccount", "name": "assay-deployer", "namespace": "assay"} in subjects
    # The shared runner account is no longer bound (issue 14, item 9): the deploy step calls the
    # API with assay-deployer's token instead.
    assert {
        "kind": "ServiceAccount",
        "name": "pipeline-runner",
        "namespace": "kubeflow",
    } not in subjects


def test_inference_services_keep_hardening_where_knative_accepts_it(target: str) -> None:
    # Knative rejects pod-level securityContext unless kubernetes.podspec-securitycontext is
    # enabled, and only a subset of container fields (no `privileged`) -- so the predictors
    # carry everything on the container.
    allowed = {
        "runAsNonRoot", "runAsUser", "runAsGroup", "readOnlyRootFilesystem",
        "allowPrivilegeEscalation", "capabilities", "seccompProfile",
    }  # fmt: skip
    for obj in render(target):
        if obj["kind"] in {"InferenceService", "ServingRuntime"}:
            for where, pod in pod_specs(obj):
                assert "securityContext" not in {k for k in pod if k != "containers"}, where
                for container in pod["containers"]:
                    assert set(container["securityContext"]) <= allowed, where
