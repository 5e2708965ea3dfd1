"""PodDisruptionBudgets: every rendered target has one for each InferenceService and MinIO, each
selects exactly its own pods, and a drain can never take every classifier pod at once.

KServe's pods are not in the render: their labels are the ones KServe's controller puts on
every predictor pod (`serving.kserve.io/inferenceservice: <name>`, `component: predictor`,
Serverless and RawDeployment alike) plus the ISVC's `spec.predictor.labels`.
"""

from __future__ import annotations

from typing import Any

import pytest
from manifest_support import find, render

pytestmark = pytest.mark.manifests

ISVCS = ("wdbc-classifier", "bias-scorer")


def kserve_pod_labels(isvc: dict[str, Any]) -> dict[str, str]:
    name = isvc["metadata"]["name"]
    labels = dict(isvc["spec"]["predictor"].get("labels", {}))
    labels.update({"serving.kserve.io/inferenceservice": name, "component": "predictor"})
    return labels


def pod_labels(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """'Kind/name' -> the labels of the pods it creates, for every pod owner in the render."""
    pods: dict[str, dict[str, str]] = {}
    for obj in objs:
        key, spec = f"{obj['kind']}/{obj['metadata']['name']}", obj.get("spec", {})
        if obj["kind"] == "InferenceService":
            pods[key] = kserve_pod_labels(obj)
        elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pods[key] = spec["template"]["metadata"].get("labels", {})
        elif obj["kind"] == "RayCluster":
            pods[key + "/head"] = spec["headGroupSpec"]["template"]["metadata"].get("labels", {})
            for group in spec.get("workerGroupSpecs", []):
                template = group["template"]["metadata"].get("labels", {})
                pods[f"{key}/{group['groupName']}"] = template
    return pods


def selects(pdb: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = pdb["spec"]["selector"]
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are checked here"
    wanted = selector["matchLabels"]
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def test_every_target_has_a_budget_for_both_servers_and_minio(target: str) -> None:
    objs = render(target)
    names = {o["metadata"]["name"] for o in objs if o["kind"] == "PodDisruptionBudget"}
    assert names >= {*ISVCS, "minio"}


def test_each_budget_selects_exactly_its_own_pods(target: str) -> None:
    objs = render(target)
    pods = pod_labels(objs)
    owners = {name: f"InferenceService/{name}" for name in ISVCS} | {"minio": "Deployment/minio"}
    for name, owner in owners.items():
        pdb = find(objs, "PodDisruptionBudget", name)
        assert pdb["metadata"]["namespace"] == "assay"
        matched = sorted(key for key, labels in pods.items() if selects(pdb, labels))
        assert matched == [owner], f"PDB {name} selects {matched}"


def test_budgets_and_monitors_agree_on_the_predictor_pods() -> None:
    objs = render("prod")
    for name in ISVCS:
        monitor = find(objs, "PodMonitor", name)["spec"]["selector"]["matchLabels"]
        pdb = find(objs, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert monitor.items() <= pdb.items(), name


@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-raw-hpa"])
def test_a_drain_keeps_a_classifier_and_is_never_blocked_by_the_servers(overlay: str) -> None:
    """Evictions allowed = replicas - (replicas - maxUnavailable): prod's two classifier pods
    lose at most one; dev's single pods can still be evicted, so a drain completes."""
    objs = render(overlay)
    for name in ISVCS:
        spec = find(objs, "PodDisruptionBudget", name)["spec"]
        assert "minAvailable" not in spec, f"{name}: minAvailable would block draining one pod"
        unavailable = spec["maxUnavailable"]
        replicas = find(objs, "InferenceService", name)["spec"]["predictor"]["minReplicas"]
        assert unavailable >= 1, name
        if name == "wdbc-classifier" and overlay.startswith("prod"):
            assert replicas - unavailable >= 1, f"{overlay}: a drain could take every classifier"


def test_minio_is_never_evicted_without_an_operator() -> None:
    """One MinIO pod on a ReadWriteOnce volume: the budget admits no voluntary eviction."""
    for overlay in ("dev", "prod"):
        objs = render(overlay)
        replicas = find(objs, "Deployment", "minio")["spec"]["replicas"]
        spec = find(objs, "PodDisruptionBudget", "minio")["spec"]
        assert spec.get("minAvailable") == replicas == 1
