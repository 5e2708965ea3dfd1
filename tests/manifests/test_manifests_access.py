"""Attacks on who may do what in the cluster (issue 14, item 9): the deployer's RBAC, the deploy
step's identity, and the MinIO users of serving and registration.

The RBAC rules and MinIO policies are read from the rendered manifests; the pipeline from its
compiled IR. The one stand-in is the Kubernetes API server, which cannot run here: the deploy
step's client is captured before it connects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_support import find, pod_specs, render

pytestmark = pytest.mark.manifests

ISVC = ("serving.kserve.io", "inferenceservices")
READ_ONLY_ACTIONS = {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:*", "*"}
RUNNER_ACCOUNTS = {"pipeline-runner", "default-editor", "default"}


def _isvc_rules(objs: list[dict]) -> list[dict]:
    return [
        rule
        for role in objs
        if role["kind"] in {"Role", "ClusterRole"}
        for rule in role.get("rules", [])
        if set(rule.get("apiGroups", [])) & {ISVC[0], "*"}
        and set(rule.get("resources", [])) & {ISVC[1], "*"}
    ]


def test_the_deployer_cannot_create_an_inference_service(target: str) -> None:
    for rule in _isvc_rules(render(target)):
        assert not {"create", "*"} & set(rule["verbs"]), f"a rule grants create: {rule}"


def test_the_deployer_can_patch_only_the_named_inference_services(target: str) -> None:
    rules = _isvc_rules(render(target))
    assert rules, "no Role grants access to InferenceServices: the deploy step cannot work"
    for rule in rules:
        assert set(rule["verbs"]) <= {"get", "patch"}, rule
        assert rule.get("resourceNames") == ["wdbc-classifier"], f"not restricted by name: {rule}"


def _training_ir(tmp_path: Path) -> tuple[dict, dict]:
    from kfp import compiler

    from assay_pipelines.training import training_pipeline

    path = tmp_path / "training.yaml"
    compiler.Compiler().compile(training_pipeline, str(path))
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_the_deploy_step_does_not_run_as_pipeline_runner(tmp_path: Path) -> None:
    from assay_pipelines.training import (
        DEPLOY_STEP_LABELS,
        DEPLOYER_CREDENTIALS_DIR,
        DEPLOYER_TOKEN,
    )

    for target in ("dev", "prod"):
        for binding in (o for o in render(target) if o["kind"] == "RoleBinding"):
            names = {s["name"] for s in binding["subjects"]}
            assert not names & RUNNER_ACCOUNTS, f"{binding['metadata']['name']} binds {names}"
        subjects = find(render(target), "RoleBinding", "inferenceservice-deployer")["subjects"]
        assert subjects == [
            {"kind": "ServiceAccount", "name": "assay-deployer", "namespace": "assay"}
        ]
    token = find(render("dev"), "Secret", DEPLOYER_TOKEN)
    assert token["type"] == "kubernetes.io/service-account-token"
    assert (
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "assay-deployer"
    )
    _spec, executors = _training_ir(tmp_path)
    mounts = {
        name: [(v["secretName"], v["mountPath"]) for v in config.get("secretAsVolume", [])]
        for name, config in executors.items()
    }
    assert mounts.pop("exec-deploy-inference-service") == [
        (DEPLOYER_TOKEN, DEPLOYER_CREDENTIALS_DIR)
    ]
    assert not [m for m in mounts.values() if any(name == DEPLOYER_TOKEN for name, _ in m)], (
        f"other steps mount the token: {mounts}"
    )
    # the only other Secret a training step mounts: the register step's model-signing key
    from assay_pipelines.training import SIGNING_KEY_DIR, SIGNING_KEY_SECRET

    assert {k: m for k, m in mounts.items() if m} == {
        "exec-register-model": [(SIGNING_KEY_SECRET, SIGNING_KEY_DIR)]
    }
    labels = executors["exec-deploy-inference-service"]["podMetadata"]["labels"]
    assert labels == DEPLOY_STEP_LABELS


def test_the_deploy_step_calls_the_api_with_the_deployer_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server is the stand-in: deploy_model is replaced to capture the client, and the
    model-digest check (tested in tests/unit/deploy/test_deploy_integrity.py) is skipped: no
    MinIO runs here."""
    import assay.deploy
    from assay_components.deploy import deploy_inference_service

    (tmp_path / "token").write_text("deployer-token")
    (tmp_path / "ca.crt").write_text("ca")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    seen: dict[str, Any] = {}

    def capture(spec: Any, *, api: Any = None, timeout_s: float = 0) -> Any:
        seen["api"] = api
        return assay.deploy.DeployResult(
            spec.name, spec.namespace, spec.storage_uri, "updated", 10, "http://isvc"
        )

    monkeypatch.setattr(assay.deploy, "deploy_model", capture)
    monkeypatch.setattr(assay.deploy, "verify_version", lambda spec: "ok")
    deploy_inference_service.python_func(
        model_uri="s3://assay-models/registry/wdbc-classifier/v2", credentials_dir=str(tmp_path)
    )
    configuration = seen["api"].api_client.configuration
    assert configuration.api_key["authorization"].lower() == "bearer deployer-token"
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


# --------------------------------------------------------------------------------------------
# MinIO users: follow a Secret to the user the setup Job creates and the policy it attaches
# --------------------------------------------------------------------------------------------


def _job_commands(objs: list[dict]) -> list[tuple[list[str], dict[str, tuple[str, str]]]]:
    """(command, {env var: (secret, key)}) of every container of the MinIO setup Job."""
    _where, pod = next(pod_specs(find(objs, "Job", "minio-create-buckets")))
    out = []
    for container in pod.get("initContainers", []) + pod["containers"]:
        refs = {
            e["name"]: (
                e["valueFrom"]["secretKeyRef"]["name"],
                e["valueFrom"]["secretKeyRef"]["key"],
            )
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        out.append((container["command"] + container.get("args", []), refs))
    return out


def _root_secret(objs: list[dict]) -> str:
    _where, pod = next(pod_specs(find(objs, "Deployment", "minio")))
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    return str(env["MINIO_ROOT_USER"]["valueFrom"]["secretKeyRef"]["name"])


def _policy_of_user_in(objs: list[dict], secret: str) -> dict:
    """The MinIO policy document attached to the user whose access key is in secret."""
    assert secret != _root_secret(objs), f"{secret} holds MinIO's root credentials"
    commands = _job_commands(objs)
    user = (secret, "AWS_ACCESS_KEY_ID")

    def names_user(command: list[str], refs: dict[str, tuple[str, str]]) -> bool:
        return any(refs.get(arg.strip("$()")) == user for arg in command)

    adds = [c for c, refs in commands if c[:3] == ["mc", "admin", "user"] and names_user(c, refs)]
    assert adds, f"the setup Job creates no MinIO user from {secret}"
    attached = [
        c[5]
        for c, refs in commands
        if c[:4] == ["mc", "admin", "policy", "attach"] and names_user(c, refs)
    ]
    assert len(attached) == 1, f"user of {secret}: policies {attached}"
    created = {c[5]: c[6] for c, _r in commands if c[:4] == ["mc", "admin", "policy", "create"]}
    _where, pod = next(pod_specs(find(objs, "Job", "minio-create-buckets")))
    path = Path(created[attached[0]])
    mounts = {
        m["mountPath"]: m["name"]
        for c in pod.get("initContainers", []) + pod["containers"]
        for m in c.get("volumeMounts", [])
    }
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[str(path.parent)])
    config_map = find(objs, "ConfigMap", volume["configMap"]["name"])
    return dict(json.loads(config_map["data"][path.name]))


def _grants(policy: dict) -> tuple[set[str], set[str]]:
    actions, resources = set(), set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        actions |= set(statement["Action"])
        resources |= set(statement["Resource"])
    return actions, resources


def test_serving_cannot_write_to_minio(target: str) -> None:
    objs = render(target)
    isvc = find(objs, "InferenceService", "wdbc-classifier")
    account = find(objs, "ServiceAccount", isvc["spec"]["predictor"]["serviceAccountName"])
    secrets = [s["name"] for s in account["secrets"]]
    assert len(secrets) == 1, secrets
    actions, resources = _grants(_policy_of_user_in(objs, secrets[0]))
    assert actions <= READ_ONLY_ACTIONS, f"serving may {sorted(actions - READ_ONLY_ACTIONS)}"
    assert all(r.startswith("arn:aws:s3:::assay-models") for r in resources), resources


def test_registration_writes_with_its_own_user_not_root(target: str) -> None:
    from assay_pipelines.training import MINIO_SECRET

    objs = render(target)
    actions, resources = _grants(_policy_of_user_in(objs, MINIO_SECRET))
    assert "s3:PutObject" in actions and not actions & {"s3:*", "*", "admin:*"}
    assert {"arn:aws:s3:::assay-models/*", "arn:aws:s3:::assay-pipelines/*"} <= resources
    assert all(
        r.startswith(("arn:aws:s3:::assay-models", "arn:aws:s3:::assay-pipelines"))
        for r in resources
    )


def test_only_minio_and_its_setup_job_hold_the_root_credentials(target: str) -> None:
    objs = render(target)
    root = _root_secret(objs)
    holders = set()
    for obj in objs:
        if obj["kind"] == "ServiceAccount" and {"name": root} in obj.get("secrets", []):
            holders.add(f"ServiceAccount/{obj['metadata']['name']}")
        for where, pod in pod_specs(obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                text = json.dumps([container.get("env", []), container.get("envFrom", [])])
                if f'"name": "{root}"' in text:
                    holders.add(where)
    assert holders == {"Deployment/minio", "Job/minio-create-buckets"}
