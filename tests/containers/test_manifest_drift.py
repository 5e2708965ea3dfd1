"""Drift between the manifests and the image fails, with the reason the container gave.

Each test edits the rendered dev overlay the way a careless change would (a mistyped module, a
path the image does not have, a write outside the pod's writable mounts) and runs the pod: it
must never become ready, and :class:`PodNotReady` must carry the process's own error.
"""

from __future__ import annotations

import pytest
from _kustomize import find, render
from _manifest_container import PodNotReady
from _manifest_servers import classifier_pod

pytestmark = [pytest.mark.container, pytest.mark.integration]


def classifier_runtime(objs: list[dict]) -> dict:
    return find(objs, "ServingRuntime", "assay-classifier")["spec"]["containers"][0]


def not_ready_reason(objs: list[dict], tmp_path) -> str:
    with classifier_pod(tmp_path, objs=objs) as pod, pytest.raises(PodNotReady) as failed:
        pod.wait_ready(timeout_s=90)
    return str(failed.value)


def test_a_wrong_module_path_fails_with_pythons_error(tmp_path) -> None:
    objs = render("dev")
    classifier_runtime(objs)["command"] = ["python", "-m", "serving.classifer"]
    reason = not_ready_reason(objs, tmp_path)
    assert "exited with code 1" in reason
    assert "No module named serving.classifer" in reason


def test_a_model_path_the_pod_does_not_have_fails_naming_it(tmp_path) -> None:
    objs = render("dev")
    runtime = classifier_runtime(objs)
    runtime["args"] = [a.replace("/mnt/models", "/mnt/model") for a in runtime["args"]]
    reason = not_ready_reason(objs, tmp_path)
    assert "exited with code" in reason
    assert "/mnt/model" in reason.split("its log ends:")[1]
