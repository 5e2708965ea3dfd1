"""The harness that turns a rendered predictor into `podman run` (no container started here).

What the container tests run must be what the manifests say: these tests pin the translation
(KServe's runtime/model merge, env references, securityContext, volumes, limits) and show that
a manifest the harness cannot reproduce is an error naming the object, not a silent default.
"""

from __future__ import annotations

import pytest
from _kustomize import find, find_generated, generated_name, render
from _manifest_container import (
    IMAGE_MAP_ENV,
    ManifestError,
    command_line,
    expand,
    image_for,
    predictor_pod,
    resolve_env,
    run_flags,
)
from _manifest_servers import CLASSIFIER, SCORER, TEST_SECRETS

pytestmark = pytest.mark.manifests


def serving_container(pod: dict) -> dict:
    return next(c for c in pod["containers"] if c["name"] == "kserve-container")


def test_the_classifier_is_the_runtime_container_with_the_models_fields() -> None:
    objs = render("dev")
    container = serving_container(predictor_pod(objs, CLASSIFIER))
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]["containers"][0]
    model = find(objs, "InferenceService", CLASSIFIER)["spec"]["predictor"]["model"]
    assert container["image"] == runtime["image"]
    assert container["command"] == runtime["command"]
    assert f"--model_name={CLASSIFIER}" in container["args"]  # KServe's {{.Name}}
    assert not any("{{" in arg for arg in container["args"])
    assert container["securityContext"] == model["securityContext"]
    assert container["readinessProbe"] == model["readinessProbe"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/mnt/models"]["readOnly"] is True


def test_podman_flags_reproduce_the_classifiers_spec(tmp_path) -> None:
    container = serving_container(predictor_pod(render("dev"), CLASSIFIER))
    keys = tmp_path / "keys"
    mounts = {"tmp": None, "kserve-provision-location": tmp_path, "trusted-keys": keys}
    flags = run_flags(container, {"HOME": "/tmp"}, mounts)
    assert "--user=10001:10001" in flags
    assert "--read-only" in flags and "--read-only-tmpfs=false" in flags
    assert "--cap-drop=ALL" in flags
    assert "--security-opt=no-new-privileges" in flags
    assert "--memory=512m" in flags and "--cpus=1" in flags
    assert "--tmpfs=/tmp:rw,mode=1777" in flags
    assert f"--volume={tmp_path}:/mnt/models:ro" in flags
    assert f"--volume={keys}:/etc/assay/trusted-keys:ro" in flags  # the model signers' keys
    assert "--entrypoint=python" in flags
    assert command_line(container)[:2] == ["-m", "assay_serving.classifier"]


@pytest.mark.parametrize("overlay", ["root", "prod", "prod-raw-hpa"])
def test_every_overlay_runs_the_classifier_the_dev_overlay_runs(overlay: str) -> None:
    """So the container tests, which run dev's pod, cover every overlay's classifier."""
    dev = serving_container(predictor_pod(render("dev"), CLASSIFIER))
    other = serving_container(predictor_pod(render(overlay), CLASSIFIER))
    assert other == dev


def test_the_scorers_env_comes_from_its_configmap_secret_and_literals() -> None:
    objs = render("dev")
    container = serving_container(predictor_pod(objs, SCORER))
    env = resolve_env(objs, container, TEST_SECRETS)
    limits = find_generated(objs, "ConfigMap", "bias-scorer-limits")["data"]
    assert {k: env[k] for k in limits} == limits
    assert env["ASSAY_LOG_JSON"] == "true"
    assert env["OPENAI_API_KEY"] == TEST_SECRETS["llm-provider-keys/OPENAI_API_KEY"]
    assert resolve_env(objs, container, {})["OPENAI_API_KEY"] == ""  # dev's rendered Secret


def test_a_configmap_the_overlay_does_not_render_is_an_error() -> None:
    objs = [
        o for o in render("dev") if not generated_name("bias-scorer-limits", o["metadata"]["name"])
    ]
    container = serving_container(predictor_pod(objs, SCORER))
    with pytest.raises(
        ManifestError, match=r"ConfigMap bias-scorer-limits-[a-z0-9]+: not rendered"
    ):
        resolve_env(objs, container, {})


def test_a_secret_left_to_the_operator_needs_a_test_value() -> None:
    """prod reads ASSAY_REDIS_URL from Secret assay-redis, which the operator creates."""
    objs = render("prod")
    container = serving_container(predictor_pod(objs, SCORER))
    with pytest.raises(ManifestError, match="Secret assay-redis key ASSAY_REDIS_URL"):
        resolve_env(objs, container, {})
    given = {
        "assay-redis/ASSAY_REDIS_URL": "redis://127.0.0.1:6379/0",
        "assay-redis/password": "pw",
    }
    env = resolve_env(objs, container, given)
    assert (env["ASSAY_REDIS_URL"], env["ASSAY_REDIS_PASSWORD"]) == (
        "redis://127.0.0.1:6379/0",
        "pw",
    )


def test_the_redis_stand_in_gets_the_password_the_kubelet_would_expand() -> None:
    """Deployment redis says `--requirepass $(REDISCLI_AUTH)`: the harness expands it from the
    container's environment (Secret assay-redis), as the kubelet does, and the scorer reads the
    same password."""
    from _manifest_servers import redis_standin

    objs = render("dev")
    container, _ = redis_standin(objs, "image")
    env = resolve_env(objs, container, {})
    args = command_line(container, env)
    password = args[args.index("--requirepass") + 1]
    assert password == env["REDISCLI_AUTH"] and not password.startswith("$(")
    scorer = resolve_env(objs, serving_container(predictor_pod(objs, SCORER)), {})
    assert scorer["ASSAY_REDIS_PASSWORD"] == password
    assert expand("$$(KEEP) $(MISSING) $(REDISCLI_AUTH)", env) == f"$(KEEP) $(MISSING) {password}"


def test_a_template_field_kserve_does_not_set_is_an_error() -> None:
    objs = render("dev")
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]["containers"][0]
    runtime["args"].append("--storage={{.StorageUri}}")
    with pytest.raises(ManifestError, match=r"\{\{.StorageUri\}\}"):
        predictor_pod(objs, CLASSIFIER)


def test_the_image_is_the_rendered_one_unless_mapped(monkeypatch) -> None:
    rendered = serving_container(predictor_pod(render("dev"), CLASSIFIER))["image"]
    monkeypatch.delenv(IMAGE_MAP_ENV, raising=False)
    assert image_for(rendered) == rendered
    monkeypatch.setenv(IMAGE_MAP_ENV, f"other:1=x, {rendered}=localhost/assay:dev")
    assert image_for(rendered) == "localhost/assay:dev"
