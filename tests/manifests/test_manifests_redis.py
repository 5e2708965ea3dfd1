"""The Redis the bias scorer's replicas share (issue 11, item 2), on the rendered manifests: every
target deploys it behind a Service, the scorer's ASSAY_REDIS_URL reaches it (dev) or comes from
the operator's Secret (prod), and only the LLM callers can connect to the real Redis pod."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from manifest_support import find, render
from netpol import Pod, allowed, network_policies, rendered_pods

STEP_LABELS = {"pipelines.kubeflow.org/v2_component": "true"}
pytestmark = pytest.mark.manifests
REDIS_LABELS = {"app.kubernetes.io/name": "redis"}


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
    objs = render(target)
    env, maps = _scorer_env(objs)
    if target.startswith("prod"):  # the operator's Secret (managed Redis or the in-cluster one)
        ref = env["ASSAY_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("assay-redis", "ASSAY_REDIS_URL")
        assert "optional" not in ref, "a missing Secret must stop the pod (fail closed)"
        return
    assert "ASSAY_REDIS_URL" not in env
    urls = [find(objs, "ConfigMap", name)["data"].get("ASSAY_REDIS_URL") for name in maps]
    (url,) = [u for u in urls if u]
    parts = urlsplit(url)
    namespace = find(objs, "Service", "redis")["metadata"]["namespace"]
    assert parts.scheme == "redis" and parts.port == 6379
    assert parts.hostname in {"redis", f"redis.{namespace}", f"redis.{namespace}.svc.cluster.local"}


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
