"""dev deploys the simulated LLM endpoint as a Service the bias-study pipeline reaches by
in-cluster DNS; prod rates with the real providers, keys from the Secret. Checked on the
rendered manifests (no cluster here; NetworkPolicies evaluated by netpol.py)."""

from __future__ import annotations

import pytest
from manifest_support import find, render
from netpol import External, Pod, allowed, network_policies, rendered_pods

from assay.config import PIPELINE_IMAGE

pytestmark = pytest.mark.manifests

SIM = "assay-sim-llm"
STEP = {"pipelines.kubeflow.org/v2_component": "true"}


def _sim_port(objs: list[dict]) -> int:
    ports = find(objs, "Service", SIM)["spec"]["ports"]
    return int(next(p["port"] for p in ports if p["name"] == "http"))


def test_dev_runs_the_simulator_as_a_service_bound_beyond_loopback() -> None:
    from typer.testing import CliRunner

    from assay.cli import app

    objs = render("dev")
    deployment, service = find(objs, "Deployment", SIM), find(objs, "Service", SIM)
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["assay", "sim-llm"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[service["spec"]["ports"][0]["targetPort"]] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["image"] == PIPELINE_IMAGE
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    result = CliRunner().invoke(app, ["sim-llm", "--help"])
    assert result.exit_code == 0 and "--host" in result.output


def test_the_default_ensemble_of_dev_reaches_the_simulator_by_dns() -> None:
    from assay.llm.ensemble import load_ensemble
    from assay_pipelines.bias_study import PIPELINE_ENV_CONFIG_MAP, RATING_ENV

    objs = render("dev")
    env = find(objs, "ConfigMap", PIPELINE_ENV_CONFIG_MAP)["data"]
    assert {"ASSAY_ENSEMBLE", "ASSAY_SIM_URL"} <= set(RATING_ENV)
    url = f"http://{SIM}.assay.svc:{_sim_port(objs)}"
    assert env["ASSAY_SIM_URL"] == url
    ensemble = load_ensemble(None, environ=env)  # what the rate step loads for ensemble=""
    urls = {ep.base_url for r in ensemble.raters.values() for ep in r.endpoints}
    assert urls == {url, f"{url}/v1"}
    assert all(r.model.startswith("sim-") for r in ensemble.raters.values())


def test_prod_rates_with_real_providers_keyed_from_the_secret_and_has_no_simulator() -> None:
    from assay.llm.ensemble import endpoints_of, load_ensemble
    from assay_pipelines.bias_study import PIPELINE_ENV_CONFIG_MAP, PROVIDER_KEYS

    objs = render("prod")
    assert not [o for o in objs if o["metadata"]["name"] == SIM]
    env = find(objs, "ConfigMap", PIPELINE_ENV_CONFIG_MAP)["data"]
    assert "ASSAY_SIM_URL" not in env
    ensemble = load_ensemble(None, environ=env)
    keys = {ep.api_key_env for r in ensemble.raters for ep in endpoints_of(ensemble, r)}
    assert keys == set(PROVIDER_KEYS)
    assert all(ep.base_url is None for r in ensemble.raters.values() for ep in r.endpoints)


def test_only_computing_steps_reach_the_simulator() -> None:
    from assay_pipelines.training import DEPLOY_STEP_LABELS

    objs = render("dev")
    policies, pods = network_policies(objs), rendered_pods(objs)
    sim, port = pods[f"Deployment/{SIM}"], _sim_port(objs)
    callers = {
        "rate step": Pod("step", "assay", STEP),
        "rate step (kubeflow)": Pod("step", "kubeflow", STEP),
    }
    for name, caller in callers.items():
        assert allowed(policies, caller, sim, port), f"{name} -> simulator must work"
        assert not allowed(policies, caller, sim, port + 1), f"{name}: only the sim port"
    for name, stranger in {
        "deploy step": Pod("deploy", "assay", {**STEP, **DEPLOY_STEP_LABELS}),
        "ray worker": pods["RayCluster/assay-ray cpu"],
        "ray head": pods["RayCluster/assay-ray head"],
        "unlabelled pod": Pod("stranger", "assay", {}),
        "bias scorer": pods["InferenceService/bias-scorer"],
        "classifier": pods["InferenceService/wdbc-classifier"],
        "minio": pods["Deployment/minio"],
    }.items():
        assert not allowed(policies, stranger, sim, port), f"{name} -> simulator"
    assert not allowed(policies, sim, pods["Deployment/minio"], 9000)
    assert not allowed(policies, sim, External("203.0.113.7"), 443)
