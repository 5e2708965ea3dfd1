"""Names shared between the manifests and the code that runs in them: server arguments,
image tag, registry URIs, ConfigMap keys, Secret keys, Ray address, rater ensemble."""

from __future__ import annotations

import base64
import tomllib

import pytest
import yaml
from manifest_support import REPO_ROOT, find, find_generated, render

pytestmark = pytest.mark.manifests


def _runtime_container() -> dict:
    runtime = find(render("prod"), "ServingRuntime", "assay-classifier")
    return runtime["spec"]["containers"][0]


def test_classifier_runtime_runs_the_server_with_arguments_it_accepts() -> None:
    from assay_serving.classifier import build_parser, options_from_args

    container = _runtime_container()
    assert container["command"] == ["python", "-m", "assay_serving.classifier"]
    args = [arg.replace("{{.Name}}", "wdbc-classifier") for arg in container["args"]]
    build_parser().parse_args(args)  # strict: an unknown argument exits
    options = options_from_args(args)
    assert options.name == "wdbc-classifier"
    assert options.model_uri == "/mnt/models"  # where KServe's storage initializer copies
    assert (options.http_port, options.grpc_port) == (8080, 8081)
    assert container["ports"][0]["containerPort"] == options.http_port


def test_bias_scorer_runs_its_server_with_arguments_and_limits_it_accepts() -> None:
    from assay_serving.bias_scorer import build_parser, options_from_args

    objs = render("prod")
    container = _scorer(objs)["containers"][0]
    assert container["command"] == ["python", "-m", "assay_serving.bias_scorer"]
    build_parser().parse_args(container["args"])  # strict: an unknown argument exits
    options = options_from_args(container["args"])
    assert options.name == "bias-scorer"
    assert (options.http_port, options.grpc_port) == (8080, 8081)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert options.ensemble_path == f"{mounts['config']}/ensemble.yaml"
    assert "ensemble.yaml" in find_generated(objs, "ConfigMap", "bias-scorer-config")["data"]
    # every limit in the ConfigMap is an environment variable the server documents
    limits = find_generated(objs, "ConfigMap", "bias-scorer-limits")["data"]
    help_text = " ".join(build_parser().format_help().split())
    for name in limits:
        assert f"env {name}" in help_text, f"{name} is not read by the bias scorer"
    assert float(limits["ASSAY_LLM_DAILY_BUDGET_USD"]) > 0


def test_image_tag_is_the_components_base_image() -> None:
    from assay_components._base import BASE_IMAGE

    kustomization = yaml.safe_load((REPO_ROOT / "manifests/base/kustomization.yaml").read_text())
    entry = next(i for i in kustomization["images"] if i["name"] == "assay")
    assert f"{entry['newName']}:{entry['newTag']}" == BASE_IMAGE
    assert entry["newTag"] != "latest"


def test_the_images_are_tagged_with_the_project_version() -> None:
    """pyproject.toml's version is the one written by hand; the kustomization repeats it (a
    kustomization cannot read it), and this is where a release that forgets it fails."""
    import assay
    from assay.config import CLASSIFIER_IMAGE, PIPELINE_IMAGE

    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert assay.__version__ == version, "pyproject.toml changed since the install: make venv"
    kustomization = yaml.safe_load((REPO_ROOT / "manifests/base/kustomization.yaml").read_text())
    tags = {i["name"]: i["newTag"] for i in kustomization["images"]}
    assert {"assay": version, "assay-classifier": version} == {
        name: tags[name] for name in ("assay", "assay-classifier")
    }
    assert {PIPELINE_IMAGE, CLASSIFIER_IMAGE} == {
        f"ghcr.io/assay-ml/assay:{version}",
        f"ghcr.io/assay-ml/assay-classifier:{version}",
    }


def test_inference_service_loads_a_registry_version_folder() -> None:
    from assay.registry import parse_model_uri

    for target in ("dev", "prod"):
        isvc = find(render(target), "InferenceService", "wdbc-classifier")
        root, name, ref = parse_model_uri(isvc["spec"]["predictor"]["model"]["storageUri"])
        assert (root, name) == ("s3://assay-models/registry", "wdbc-classifier")
        assert ref.startswith("v")


def test_buckets_job_creates_the_registry_and_pipeline_buckets() -> None:
    job = find(render("prod"), "Job", "minio-create-buckets")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert {"assay/assay-models", "assay/assay-pipelines"} <= set(command)


def test_pipeline_environment_matches_what_the_pipeline_mounts() -> None:
    from assay_pipelines.training import (
        CONFIG_MAP_TO_ENV,
        MINIO_SECRET,
        MINIO_SECRET_TO_ENV,
        PIPELINE_ENV_CONFIG_MAP,
    )

    objs = render("dev")
    env = find(objs, "ConfigMap", PIPELINE_ENV_CONFIG_MAP)["data"]
    assert set(CONFIG_MAP_TO_ENV) <= set(env)
    assert env["ASSAY_REGISTRY"] == "s3://assay-models/registry"
    ray = find(objs, "RayCluster", "assay-ray")
    port = {p["name"]: p["containerPort"] for p in _ray_head(ray)["ports"]}["client"]
    assert env["RAY_ADDRESS"] == f"ray://{ray['metadata']['name']}-head-svc.assay.svc:{port}"
    service = find(objs, "Service", "minio")
    s3_port = {p["name"]: p["port"] for p in service["spec"]["ports"]}["s3"]
    assert env["MINIO_ENDPOINT"] == f"minio.assay.svc:{s3_port}"
    annotations = find(objs, "ServiceAccount", "kserve-s3")["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-endpoint"] == env["MINIO_ENDPOINT"]
    secret = find(objs, "Secret", MINIO_SECRET)
    assert set(MINIO_SECRET_TO_ENV) <= set(secret["data"])


def _ray_head(ray: dict) -> dict:
    return ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


def _load_configmap_ensemble(objs: list, tmp_path) -> object:  # type: ignore[no-untyped-def]
    from assay.llm.ensemble import load_ensemble

    config = find_generated(objs, "ConfigMap", "bias-scorer-config")["data"]["ensemble.yaml"]
    path = tmp_path / "ensemble.yaml"
    path.write_text(config)
    return load_ensemble(path, environ={})


def _scorer(objs: list) -> dict:
    return find(objs, "InferenceService", "bias-scorer")["spec"]["predictor"]


def test_prod_scorer_rates_with_the_packaged_provider_raters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The ConfigMap's ensemble is a copy (kustomize reads nothing outside manifests/): its
    raters (models, limits, prices and their dates) must equal the packaged providers.yaml."""
    from assay.llm.ensemble import load_ensemble

    for overlay in ("prod", "prod-raw-hpa"):
        served = _load_configmap_ensemble(render(overlay), tmp_path)
        assert served.raters == load_ensemble("bundled:providers", environ={}).raters, overlay  # type: ignore[attr-defined]


def test_prod_ensemble_loads_and_its_keys_come_from_the_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assay.llm.ensemble import endpoints_of

    objs = render("prod")
    ensemble = _load_configmap_ensemble(objs, tmp_path)
    key_vars = {ep.api_key_env for r in ensemble.raters for ep in endpoints_of(ensemble, r)}  # type: ignore[attr-defined]
    assert key_vars == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY"}
    container = _scorer(objs)["containers"][0]
    from_secret = {
        e["name"]
        for e in container["env"]
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "llm-provider-keys"
    }
    assert from_secret == key_vars


def test_dev_rates_with_the_simulated_raters_of_its_sidecar(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from assay.cli import app

    objs = render("dev")
    ensemble = _load_configmap_ensemble(objs, tmp_path)
    for rater in ensemble.raters.values():  # type: ignore[attr-defined]
        assert rater.model.startswith("sim-")
        for endpoint in rater.endpoints:
            assert endpoint.api_key_env is None
            assert endpoint.base_url.startswith("http://127.0.0.1:8000")
    sidecar = next(c for c in _scorer(objs)["containers"] if c["name"] == "llm-sim")
    command = sidecar["command"]
    assert command[:2] == ["assay", "sim-llm"] and command[command.index("--port") + 1] == "8000"
    result = CliRunner().invoke(app, ["sim-llm", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
    secret = find(objs, "Secret", "llm-provider-keys")
    assert all(base64.b64decode(v) == b"" for v in secret["data"].values())  # no real keys


def test_bias_study_pipeline_mounts_what_the_manifests_define() -> None:
    from assay_pipelines.bias_study import PIPELINE_ENV_CONFIG_MAP, PROVIDER_KEYS, PROVIDER_SECRET

    objs = render("dev")
    assert "RAY_ADDRESS" in find(objs, "ConfigMap", PIPELINE_ENV_CONFIG_MAP)["data"]
    assert set(PROVIDER_KEYS) == set(find(objs, "Secret", PROVIDER_SECRET)["data"])
    ray_worker = find(objs, "RayCluster", "assay-ray")["spec"]["workerGroupSpecs"][0]
    worker_env = ray_worker["template"]["spec"]["containers"][0]["env"]
    from_secret = {
        e["name"]
        for e in worker_env
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == PROVIDER_SECRET
    }
    assert from_secret == set()  # the rate step fans out in its own pod: Ray holds no keys
