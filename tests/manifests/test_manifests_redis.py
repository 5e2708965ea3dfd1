"""The Redis the bias scorer's replicas share (issue 11, item 2), on the rendered manifests: every
target deploys it behind a Service, a patched image, with a password from Secret assay-redis (the
scorer reads its URL and password from the same Secret, dev renders a test one, prod's operator
creates it); no other object holds a password; only the LLM callers can connect to Redis."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from manifest_support import find, pod_specs, render
from netpol import Pod, allowed, network_policies, rendered_pods

STEP_LABELS = {"pipelines.kubeflow.org/v2_component": "true"}
pytestmark = pytest.mark.manifests
REDIS_LABELS = {"app.kubernetes.io/name": "redis"}
REDIS_SECRET = "assay-redis"
CREDENTIALS_IN_URL = re.compile(r"rediss?://[^/\s@]*:[^/\s@]+@")


def _scorer_env(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    container = find(objs, "InferenceService", "bias-scorer")["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    maps = [ref["configMapRef"]["name"] for ref in container.get("envFrom", [])]
    return env, maps


def test_every_target_deploys_redis_behind_a_service(target: str) -> None:
    objs = render(target)
    service = find(objs, "Service", "redis")
    assert service["spec"]["selector"] == REDIS_LABELS
    assert [p["port"] for p in service["spec"]["ports"]] == [6379]
    pods = rendered_pods(objs)
    assert pods["Deployment/redis"].labels.items() >= REDIS_LABELS.items()
    deployment = find(objs, "Deployment", "redis")
    assert deployment["spec"]["replicas"] == 1  # the Lua scripts are atomic per instance


def test_the_scorer_points_at_the_shared_redis(target: str) -> None:
    """URL and password from the operator's Secret assay-redis (dev renders a test one)."""
    objs = render(target)
    env, _ = _scorer_env(objs)
    for variable, key in (
        ("ASSAY_REDIS_URL", "ASSAY_REDIS_URL"),
        ("ASSAY_REDIS_PASSWORD", "password"),
    ):
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (REDIS_SECRET, key)
        assert "optional" not in ref, "a missing Secret must stop the pod (fail closed)"
    if target.startswith("prod"):  # the operator's Secret (managed Redis or the in-cluster one)
        assert not [
            o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == REDIS_SECRET
        ]
        return
    url = _secret(objs)["ASSAY_REDIS_URL"]
    parts = urlsplit(url)
    namespace = find(objs, "Service", "redis")["metadata"]["namespace"]
    assert parts.scheme == "redis" and parts.port == 6379 and parts.password is None
    assert parts.hostname in {"redis", f"redis.{namespace}", f"redis.{namespace}.svc.cluster.local"}


def _secret(objs: list[dict[str, Any]]) -> dict[str, str]:
    secret = find(objs, "Secret", REDIS_SECRET)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_redis_requires_the_password_the_clients_read(target: str) -> None:
    objs = render(target)
    container = find(objs, "Deployment", "redis")["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    value = args[args.index("--requirepass") + 1]
    match = re.fullmatch(r"\$\((\w+)\)", value)
    assert match, f"requirepass {value!r} must come from the environment (a Secret)"
    env = {e["name"]: e for e in container["env"]}
    ref = env[match.group(1)]["valueFrom"]["secretKeyRef"]
    scorer_env, _ = _scorer_env(objs)
    assert ref == scorer_env["ASSAY_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    # the readiness probe's redis-cli authenticates with the same variable
    assert match.group(1) == "REDISCLI_AUTH"
    assert container["readinessProbe"]["exec"]["command"][0] == "redis-cli"


def test_the_redis_image_is_a_patched_release() -> None:
    """7.2.5 has the Lua use-after-free CVEs (CVE-2025-49844 and friends, fixed in 7.2.11) and
    the 2026 ones (fixed in 7.2.15 / 7.4.10)."""
    fixed_in = {(7, 2): 15, (7, 4): 10}
    for target in ("dev", "prod"):
        container = find(render(target), "Deployment", "redis")["spec"]["template"]["spec"]
        image = container["containers"][0]["image"]
        name, _, tag = image.rpartition(":")
        assert name == "docker.io/library/redis", image
        major, minor, patch = (int(n) for n in tag.split("-")[0].split("."))
        assert (major, minor) in fixed_in and patch >= fixed_in[(major, minor)], image


def _without_dev_secret(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if (o["kind"], o["metadata"]["name"]) != ("Secret", REDIS_SECRET)]


def test_no_rendered_object_holds_a_redis_password(target: str) -> None:
    """Only the dev overlay's test Secret holds one: no literal requirepass, no URL with
    credentials, and the dev password nowhere else."""
    objs = render(target)
    dev_password = _secret(render("dev"))["password"]
    for obj in _without_dev_secret(objs):
        text = yaml.safe_dump(obj)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert dev_password not in text, where
        assert not CREDENTIALS_IN_URL.search(text), where
        for name, spec in pod_specs(obj):
            for container in spec.get("containers", []):
                args = [*container.get("command", []), *container.get("args", [])]
                for i, arg in enumerate(args[:-1]):
                    if arg == "--requirepass":
                        assert args[i + 1].startswith("$("), f"{name}: literal requirepass"


def test_only_the_llm_callers_reach_the_deployed_redis(target: str) -> None:
    objs = render(target)
    policies, pods = network_policies(objs), rendered_pods(objs)
    redis = pods["Deployment/redis"]
    from assay_pipelines.bias_study import RATE_STEP_LABELS

    rate_step = Pod("rate step", redis.namespace, {**STEP_LABELS, **RATE_STEP_LABELS})
    assert allowed(policies, pods["InferenceService/bias-scorer"], redis, 6379)
    assert allowed(policies, rate_step, redis, 6379)
    stranger = Pod("unlabelled pod", redis.namespace, {})
    others = (pods["InferenceService/wdbc-classifier"], pods["Deployment/minio"], stranger)
    for caller in (*others, pods["RayCluster/assay-ray cpu"]):
        assert not allowed(policies, caller, redis, 6379), f"{caller.name} -> Redis"
