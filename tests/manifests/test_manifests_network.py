"""Attacks on the network fence (issue 14, item 10), evaluated on the rendered NetworkPolicies.

No cluster runs here: netpol.py evaluates the policies of each kustomize target against the pods
its objects create (labels as KubeRay / KServe set them) plus the pods a cluster adds (pipeline
steps, DNS, the KFP API, Prometheus, an unlabelled pod) and addresses outside the cluster.
"""

from __future__ import annotations

import pytest
from manifest_support import pod_specs, render
from netpol import External, Pod, allowed, allowing_policies, network_policies, rendered_pods

pytestmark = pytest.mark.manifests

STEP = {"pipelines.kubeflow.org/v2_component": "true"}
MINIO, RAY_CLIENT, RAY_GCS, REDIS, DNS = 9000, 10001, 6379, 6379, 53
PROVIDER = External("203.0.113.7")  # a public address, as an LLM provider's API has
CLOUD_METADATA = External("169.254.169.254")
PROVIDER_POLICY = "llm-provider-egress"


def _world(target: str) -> tuple[list[dict], dict[str, Pod]]:
    from assay_pipelines.bias_study import RATE_STEP_LABELS
    from assay_pipelines.training import DEPLOY_STEP_LABELS

    objs = render(target)
    pods = rendered_pods(objs)
    pods.update(
        step=Pod("pipeline step", "assay", STEP),
        kubeflow_step=Pod("pipeline step (kubeflow)", "kubeflow", STEP),
        deploy_step=Pod("deploy step", "assay", {**STEP, **DEPLOY_STEP_LABELS}),
        rate_step=Pod("rate step", "assay", {**STEP, **RATE_STEP_LABELS}),
        stranger=Pod("unlabelled pod", "assay", {}),
        dns=Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}),
        kfp_api=Pod("ml-pipeline", "kubeflow", {"app": "ml-pipeline"}),
        kfp_metadata=Pod("metadata-grpc", "kubeflow", {"component": "metadata-grpc-server"}),
        kfp_artifacts=Pod("minio (KFP)", "kubeflow", {"app": "minio"}),
        kfp_database=Pod("mysql (KFP)", "kubeflow", {"app": "mysql"}),
        redis=Pod("redis", "assay", {"app.kubernetes.io/name": "redis"}),
        activator=Pod("activator", "knative-serving", {"app": "activator"}),
        prometheus=Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    )
    return network_policies(objs), pods


def _assay_namespaces(target: str) -> set[str]:
    return {o["metadata"]["namespace"] for o in render(target) if "namespace" in o["metadata"]}


def test_a_pod_without_an_allow_policy_can_reach_nothing_but_dns(target: str) -> None:
    policies, pods = _world(target)
    stranger = pods["stranger"]
    for victim, port in (
        (pods["Deployment/minio"], MINIO),
        (pods["RayCluster/assay-ray head"], RAY_CLIENT),
        (pods["InferenceService/wdbc-classifier"], 8080),
        (pods["kfp_api"], 8887),
        (pods["redis"], REDIS),
    ):
        assert not allowed(policies, stranger, victim, port), f"unlabelled pod -> {victim.name}"
    assert not allowed(policies, stranger, PROVIDER, 443), "unlabelled pod -> the internet"
    assert not allowed(policies, stranger, CLOUD_METADATA, 80), "unlabelled pod -> metadata"
    assert not allowed(policies, pods["step"], stranger, 8080), "nothing reaches it either"
    assert allowed(policies, stranger, pods["dns"], DNS, "UDP")


def test_default_deny_selects_every_pod_in_each_namespace_in_both_directions(
    target: str,
) -> None:
    policies = network_policies(render(target))
    for namespace in _assay_namespaces(target):
        deny_all = [
            p
            for p in policies
            if p["metadata"]["namespace"] == namespace
            and p["spec"].get("podSelector") == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny_all, f"no default-deny (ingress + egress) policy in namespace {namespace}"


def test_minio_accepts_traffic_only_from_the_classifier_and_pipeline_steps(target: str) -> None:
    policies, pods = _world(target)
    minio = pods["Deployment/minio"]
    # the deploy step reads the version's card and model.joblib to check the digest
    for name in ("InferenceService/wdbc-classifier", "step", "kubeflow_step", "deploy_step"):
        assert allowed(policies, pods[name], minio, MINIO), f"{name} -> MinIO must work"
    # the bucket/user setup Job is MinIO's administrator: the one other client
    assert allowed(policies, pods["Job/minio-create-buckets"], minio, MINIO)
    for name in (
        "InferenceService/bias-scorer",
        "RayCluster/assay-ray head",
        "RayCluster/assay-ray cpu",
        "stranger",
        "prometheus",
        "activator",
    ):
        assert not allowed(policies, pods[name], minio, MINIO), f"{name} -> MinIO must be denied"
    assert not allowed(policies, pods["InferenceService/wdbc-classifier"], minio, 9001)


def test_the_ray_client_port_is_open_only_to_pipeline_steps(target: str) -> None:
    policies, pods = _world(target)
    head = pods["RayCluster/assay-ray head"]
    assert allowed(policies, pods["step"], head, RAY_CLIENT)
    assert allowed(policies, pods["kubeflow_step"], head, RAY_CLIENT)
    for name in (
        "stranger",
        "InferenceService/bias-scorer",
        "InferenceService/wdbc-classifier",
        "Deployment/minio",
        "Job/minio-create-buckets",
        "deploy_step",
    ):
        assert not allowed(policies, pods[name], head, RAY_CLIENT), f"{name} -> Ray client"
    assert not allowed(policies, pods["step"], head, RAY_GCS), "steps speak only the client port"
    worker = pods["RayCluster/assay-ray cpu"]
    assert allowed(policies, worker, head, RAY_GCS), "the cluster's own traffic must work"


def test_provider_egress_goes_only_through_the_named_policy(target: str) -> None:
    policies, pods = _world(target)
    for name in ("InferenceService/bias-scorer", "rate_step"):
        caller = pods[name]
        assert allowed(policies, caller, PROVIDER, 443), f"{name} must reach the providers"
        assert allowing_policies(policies, caller, PROVIDER, 443) == [PROVIDER_POLICY], name
        assert not allowed(policies, caller, PROVIDER, 80), f"{name}: HTTPS only"
        assert not allowed(policies, caller, CLOUD_METADATA, 80), f"{name} -> metadata"
        assert not allowed(policies, caller, CLOUD_METADATA, 443), f"{name} -> metadata"
    for name in (
        "InferenceService/wdbc-classifier",
        "Deployment/minio",
        "Job/minio-create-buckets",
        "RayCluster/assay-ray head",
        "RayCluster/assay-ray cpu",
        "step",
        "deploy_step",
    ):
        assert not allowed(policies, pods[name], PROVIDER, 443), f"{name} -> a provider"


def test_only_the_llm_callers_reach_the_response_cache(target: str) -> None:
    policies, pods = _world(target)
    redis = pods["redis"]
    for name in ("InferenceService/bias-scorer", "rate_step"):
        assert allowed(policies, pods[name], redis, REDIS), f"{name} -> Redis must work"
    for name in (
        "InferenceService/wdbc-classifier",
        "Deployment/minio",
        "stranger",
        "step",
        "RayCluster/assay-ray cpu",
    ):
        assert not allowed(policies, pods[name], redis, REDIS), f"{name} -> Redis"


def test_what_the_services_need_still_flows_under_default_deny(target: str) -> None:
    policies, pods = _world(target)
    classifier = pods["InferenceService/wdbc-classifier"]
    for server in (classifier, pods["InferenceService/bias-scorer"]):
        assert allowed(policies, pods["activator"], server, 8012)
        assert allowed(policies, pods["prometheus"], server, 8080)
        assert not allowed(policies, pods["step"], server, 8080)
    for name in ("step", "kubeflow_step", "deploy_step"):
        assert allowed(policies, pods[name], pods["kfp_api"], 8887), f"{name} -> KFP API"
    for name in ("step", "deploy_step"):  # Argo's wait container; the deploy step's calls
        assert allowed(policies, pods[name], External("172.18.0.2"), 6443), f"{name} -> API"
    for name, pod in pods.items():
        if pod.namespace == "assay":
            assert allowed(policies, pod, pods["dns"], DNS, "UDP"), f"{name} -> DNS"
            assert allowed(policies, pod, pods["dns"], DNS, "TCP"), f"{name} -> DNS"


def test_steps_reach_only_kfps_api_metadata_and_artifact_ports_in_kubeflow(target: str) -> None:
    """The attack: from a step, open the KFP database, or another port of a KFP service."""
    policies, pods = _world(target)
    needed = [("kfp_api", 8887), ("kfp_api", 8888), ("kfp_metadata", 8080), ("kfp_artifacts", 9000)]
    refused = [("kfp_database", 3306), ("kfp_api", 3306), ("kfp_metadata", 8887), ("kfp_api", 22)]
    for step in ("step", "deploy_step"):
        for name, port in needed:
            assert allowed(policies, pods[step], pods[name], port), f"{step} -> {name}:{port}"
        for name, port in refused:
            assert not allowed(policies, pods[step], pods[name], port), f"{step} -> {name}:{port}"


def _key_holders(target: str) -> set[str]:
    """Pods whose containers read the provider keys Secret (env, envFrom or a volume)."""
    from assay_pipelines.bias_study import PROVIDER_SECRET

    holders = set()
    for obj in render(target):
        for where, spec in pod_specs(obj):
            text = repr([spec.get("containers", []), spec.get("volumes", [])])
            if f"'{PROVIDER_SECRET}'" in text:
                holders.add(where)
    return holders


def test_no_step_but_the_rate_step_reaches_a_pod_that_holds_provider_keys(target: str) -> None:
    """The attack: from any pipeline step, run code where the provider keys are (a Ray client
    runs arbitrary code on the cluster's workers) or connect to a pod that holds them. The
    keys live only in the bias scorer and the rate step's own pod; the Ray cluster that every
    computing step reaches holds none and has no provider egress."""
    policies, pods = _world(target)
    holders = _key_holders(target)
    assert holders <= {"InferenceService/bias-scorer"}, holders  # never the Ray cluster
    assert not any(name.startswith("RayCluster/") for name in holders)
    targets = [pods[name] for name in holders] + [pods["rate_step"]]
    ports = sorted({*range(1, 1025), 2379, 6379, 8000, 8012, 8080, 8081, 8265, 10001, 52365})
    for step in ("step", "kubeflow_step", "deploy_step"):
        for holder in targets:
            reachable = [p for p in ports if allowed(policies, pods[step], holder, p)]
            assert reachable == [], f"{step} -> {holder.name} on {reachable}"
