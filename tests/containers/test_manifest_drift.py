"""Drift between the manifests and the image fails, with the reason the container gave.

Each test edits the rendered dev overlay the way a careless change would (a mistyped module, a
path the image does not have, a write outside the pod's writable mounts) and runs the pod: it
must never become ready, and :class:`PodNotReady` must carry the process's own error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _kustomize import find, render
from _manifest_container import PodNotReady, PodOptions, run_predictor
from _manifest_servers import CLASSIFIER, classifier_pod, registered_version

pytestmark = [pytest.mark.container, pytest.mark.integration]


def classifier_runtime(objs: list[dict]) -> dict:
    return find(objs, "ServingRuntime", "assay-classifier")["spec"]["containers"][0]


def not_ready_reason(objs: list[dict], tmp_path) -> str:
    with classifier_pod(tmp_path, objs=objs) as pod, pytest.raises(PodNotReady) as failed:
        pod.wait_ready(timeout_s=90)
    return str(failed.value)


def test_a_wrong_module_path_fails_with_pythons_error(tmp_path) -> None:
    objs = render("dev")
    classifier_runtime(objs)["command"] = ["python", "-m", "assay_serving.classifer"]
    reason = not_ready_reason(objs, tmp_path)
    assert "exited with code 1" in reason
    assert "No module named assay_serving.classifer" in reason


def test_a_model_path_the_pod_does_not_have_fails_naming_it(tmp_path) -> None:
    objs = render("dev")
    runtime = classifier_runtime(objs)
    runtime["args"] = [a.replace("/mnt/models", "/mnt/model") for a in runtime["args"]]
    reason = not_ready_reason(objs, tmp_path)
    assert "exited with code" in reason
    assert "/mnt/model" in reason.split("its log ends:")[1]


def without_tmp(objs: list[dict]) -> None:
    """Drop the classifier's /tmp emptyDir (runtime and InferenceService both declare one)."""
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]
    predictor = find(objs, "InferenceService", CLASSIFIER)["spec"]["predictor"]
    for holder in (runtime["containers"][0], predictor["model"]):
        holder["volumeMounts"] = [m for m in holder["volumeMounts"] if m["mountPath"] != "/tmp"]
    for spec in (runtime, predictor):
        spec["volumes"] = [v for v in spec["volumes"] if "emptyDir" not in v]


@pytest.mark.parametrize("tmp_mounted", [True, False], ids=["with-tmp", "without-tmp"])
@pytest.mark.slow
def test_a_write_outside_the_pods_writable_mounts_fails(tmp_path: Path, tmp_mounted: bool) -> None:
    """Served from a registry alias, the server downloads the version into a temporary folder:
    with the manifest's /tmp emptyDir it is ready; without it the read-only root refuses the
    write (podman's --read-only alone would have mounted a writable /tmp: the harness turns that
    off, as Kubernetes gives none)."""
    objs = render("dev")
    runtime = classifier_runtime(objs)
    alias = f"--model_uri=file:///mnt/models/{CLASSIFIER}/latest"
    runtime["args"] = [alias if a.startswith("--model_uri=") else a for a in runtime["args"]]
    if not tmp_mounted:
        without_tmp(objs)
    registry_root = registered_version(tmp_path / "model", objs).parents[1]
    options = PodOptions(model_dir=registry_root)
    with run_predictor(objs, CLASSIFIER, tmp_path, options) as pod:
        if tmp_mounted:
            pod.wait_ready(timeout_s=90)
            return
        with pytest.raises(PodNotReady) as failed:
            pod.wait_ready(timeout_s=90)
    assert "No usable temporary directory found in ['/tmp'" in str(failed.value)
