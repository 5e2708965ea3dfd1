"""The bias scorer's callers and spend record on the rendered manifests (issue 22):

- the scorer reads its caller key file from Secret bias-scorer-callers (not optional: no key
  file, no pod); dev generates a test one that the server's own parser accepts; prod defines
  none (the operator creates it);
- each caller's default share (budget, queue) is set and the server accepts it;
- Istio's AuthorizationPolicy selects the scorer's pods, lets probes and Prometheus reach only
  the health/readiness/metrics paths, and inference only from the gateway, Knative's activator
  and namespace assay. Istio's CRD is not in ../shared/crds, so this checks the object's
  structure and meaning, not its schema;
- Redis keeps the day's spend on a PersistentVolumeClaim with an fsynced append-only file.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from manifest_support import find, find_generated, generated_name, render
from netpol import rendered_pods

pytestmark = pytest.mark.manifests

KEY_FILE_ARG = "--caller-keys-file="
SECRET = "bias-scorer-callers"


def _scorer(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    predictor = find(objs, "InferenceService", "bias-scorer")["spec"]["predictor"]
    return predictor, predictor["containers"][0]


def _key_file_path(container: dict[str, Any]) -> str:
    (arg,) = [a for a in container["args"] if a.startswith(KEY_FILE_ARG)]
    return arg.removeprefix(KEY_FILE_ARG)


def test_the_scorer_reads_its_callers_from_the_secret(target: str) -> None:
    predictor, container = _scorer(render(target))
    path = Path(_key_file_path(container))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in predictor["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(path.parent)]
    assert mounts[name]["readOnly"] is True
    secret = volumes[name]["secret"]
    assert generated_name(SECRET, secret["secretName"])
    assert not secret.get("optional", False), "a missing key file must stop the pod"
    assert path.name == "callers.yaml"


def test_dev_generates_a_key_file_the_server_accepts(tmp_path: Path) -> None:
    from assay.serving.bias_callers import read_caller_keys

    secret = find_generated(render("dev"), "Secret", SECRET)
    assert set(secret["data"]) == {"callers.yaml"}
    key_file = tmp_path / "callers.yaml"
    key_file.write_bytes(base64.b64decode(secret["data"]["callers.yaml"]))
    keys = read_caller_keys(str(key_file))
    assert keys.required and set(keys.callers) == {"dev-notebook", "dev-pipeline"}
    notebook = keys.authenticate(
        {"authorization": "Bearer assay-dev-only-caller-key-notebook-0001"}
    )
    assert notebook.id == "dev-notebook" and notebook.daily_budget_usd == 1.0


def test_prod_leaves_the_key_secret_to_the_operator() -> None:
    for target in ("prod", "prod-raw-hpa"):
        assert not [o for o in render(target) if o["kind"] == "Secret"]
        _, container = _scorer(render(target))
        assert _key_file_path(container) == "/etc/assay-callers/callers.yaml"


def test_each_caller_has_a_default_share_the_server_accepts(target: str) -> None:
    from assay_serving.bias_scorer import options_from_args

    objs = render(target)
    _, container = _scorer(objs)
    limits = find_generated(objs, "ConfigMap", "bias-scorer-limits")["data"]
    daily = float(limits["ASSAY_LLM_DAILY_BUDGET_USD"])
    caller_daily = float(limits["ASSAY_SCORER_CALLER_DAILY_BUDGET_USD"])
    assert 0 < caller_daily < daily, "one caller must not be able to spend the whole day"
    queued = int(limits["ASSAY_SCORER_CALLER_MAX_QUEUED"])
    assert 0 < queued < 256  # the scorer's --max-queued-passages default
    env = {k: v for k, v in limits.items() if k.startswith("ASSAY_SCORER_CALLER")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        options = options_from_args(container["args"])
    assert options.caller_daily_budget_usd == caller_daily
    assert options.caller_max_queued_passages == queued
    assert options.caller_keys_file == _key_file_path(container)


def test_istio_only_lets_the_gateway_and_the_namespace_call_the_scorer(target: str) -> None:
    objs = render(target)
    policy = find(objs, "AuthorizationPolicy", "bias-scorer-callers")
    assert policy["apiVersion"] == "security.istio.io/v1"
    spec = policy["spec"]
    assert spec["action"] == "ALLOW"
    scorer = rendered_pods(objs)["InferenceService/bias-scorer"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= scorer.labels.items(), "the policy does not select the scorer"
    assert policy["metadata"]["namespace"] == scorer.namespace
    classifier = rendered_pods(objs)["InferenceService/wdbc-classifier"]
    assert not selector.items() <= classifier.labels.items()
    open_rule, callers_rule = spec["rules"]
    assert "from" not in open_rule, "the probes' rule must not depend on a caller"
    (operation,) = [to["operation"] for to in open_rule["to"]]
    assert operation["methods"] == ["GET"]
    assert not any("infer" in path or "predict" in path for path in operation["paths"])
    _, container = _scorer(objs)
    probes = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    assert probes | {"/metrics"} <= set(operation["paths"])
    sources = [entry["source"] for entry in callers_rule["from"]]
    principals = {p for s in sources for p in s.get("principals", [])}
    namespaces = {n for s in sources for n in s.get("namespaces", [])}
    assert namespaces == {"assay"}
    assert all(p.startswith("cluster.local/ns/") and "*" not in p for p in principals)
    assert {p.split("/")[2] for p in principals} == {"istio-system", "knative-serving"}
    assert "to" not in callers_rule and "when" not in callers_rule


def test_redis_keeps_the_days_spend_on_a_persistent_volume(target: str) -> None:
    objs = render(target)
    pod = find(objs, "Deployment", "redis")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "always"
    data_dir = args[args.index("--dir") + 1]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == data_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" not in volume, "the day's spend must survive a rescheduled pod"
    claim = find(objs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert find(objs, "Deployment", "redis")["spec"]["strategy"]["type"] == "Recreate"
