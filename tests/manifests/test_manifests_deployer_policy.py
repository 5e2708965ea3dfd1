"""The deployer may only move a model: its ValidatingAdmissionPolicy, evaluated offline.

No API server runs here, so the policy's CEL is evaluated with cel-python (celpy) the way the
API server does for a ValidatingAdmissionPolicy: the match conditions first (a request that does
not match is not judged), then the variables in order (bound under ``variables``), then every
validation (all must be true). The requests are patches the deployer could send with its RBAC
``patch`` on wdbc-classifier, applied to the rendered InferenceService as the old object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from manifest_support import core_errors, find, render

pytestmark = pytest.mark.manifests

DEPLOYER = "system:serviceaccount:assay:assay-deployer"
POLICY = "assay-deployer-moves-models-only"
Obj = dict[str, Any]


def _evaluate(source: str, activation: dict[str, Any]) -> Any:
    import celpy

    env = celpy.Environment()
    result = env.program(env.compile(source)).evaluate(activation)
    if isinstance(result, celpy.CELEvalError):
        raise result
    return result


def refusals(policy: Obj, operation: str, new: Obj | None, old: Obj | None, user: str) -> list[str]:
    """The messages of the validations that deny this request ([]: admitted). An expression
    that cannot be evaluated denies (failurePolicy Fail) and is reported as ``error: ...``."""
    import celpy

    spec = policy["spec"]
    request = {"operation": operation, "userInfo": {"username": user}}
    activation = {
        key: celpy.json_to_cel(value)
        for key, value in {"object": new, "oldObject": old, "request": request}.items()
    }
    if not all(_evaluate(c["expression"], activation) for c in spec["matchConditions"]):
        return []
    assert spec["failurePolicy"] == "Fail"
    try:
        variables: dict[str, Any] = {}
        for variable in spec.get("variables", []):
            variables[variable["name"]] = _evaluate(variable["expression"], activation)
            activation["variables"] = celpy.celtypes.MapType(
                {celpy.celtypes.StringType(k): v for k, v in variables.items()}
            )
        return [
            v["message"] for v in spec["validations"] if not _evaluate(v["expression"], activation)
        ]
    except Exception as exc:
        return [f"error: {exc}"]


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return render("dev")


@pytest.fixture(scope="module")
def policy(rendered: list[Obj]) -> Obj:
    return find(rendered, "ValidatingAdmissionPolicy", POLICY)


@pytest.fixture(scope="module")
def service(rendered: list[Obj]) -> Obj:
    return find(rendered, "InferenceService", "wdbc-classifier")


def _patched(service: Obj, change: Callable[[Obj], None]) -> Obj:
    new = copy.deepcopy(service)
    change(new)
    return new


def _model(obj: Obj) -> Obj:
    model: Obj = obj["spec"]["predictor"]["model"]
    return model


def _move(obj: Obj) -> None:
    _model(obj)["storageUri"] = "s3://assay-models/registry/wdbc-classifier/v7/"
    obj["spec"]["predictor"]["canaryTrafficPercent"] = 10
    obj["metadata"].setdefault("annotations", {})["assay.io/model-version"] = "v7"


ALLOWED = {
    "move the model and its canary (what the deploy step sends)": _move,
    "a full rollout (canary removed)": lambda o: o["spec"]["predictor"].pop(
        "canaryTrafficPercent", None
    ),
}

FORBIDDEN = {
    "add an env var from a Secret": lambda o: (
        _model(o)
        .setdefault("env", [])
        .append(
            {
                "name": "K",
                "valueFrom": {
                    "secretKeyRef": {"name": "llm-provider-keys", "key": "OPENAI_API_KEY"}
                },
            }
        )
    ),
    "set a container image": lambda o: _model(o).update(image="evil.example/x:1"),
    "set a command": lambda o: _model(o).update(command=["sh", "-c", "curl evil"]),
    "change the runtime": lambda o: _model(o).update(runtime="kserve-sklearnserver"),
    "add a label that opens provider egress": lambda o: (
        o["metadata"].setdefault("labels", {}).update({"assay.io/llm-egress": "true"})
    ),
    "change the service account": lambda o: o["spec"]["predictor"].update(
        serviceAccountName="default-editor"
    ),
    "add a volume": lambda o: o["spec"]["predictor"].update(
        volumes=[{"name": "k", "secret": {"secretName": "llm-provider-keys"}}]
    ),
    "add arbitrary containers": lambda o: o["spec"]["predictor"].update(
        containers=[{"name": "x", "image": "evil.example/x:1"}]
    ),
    "add a transformer": lambda o: o["spec"].update(
        transformer={"containers": [{"name": "t", "image": "evil.example/x:1"}]}
    ),
    "switch off the sidecar by annotation": lambda o: (
        o["metadata"].setdefault("annotations", {}).update({"sidecar.istio.io/inject": "false"})
    ),
    "point storageUri at another bucket": lambda o: _model(o).update(
        storageUri="s3://attacker/registry/wdbc-classifier/v1/"
    ),
    "point storageUri at a prefix (no trailing slash)": lambda o: _model(o).update(
        storageUri="s3://assay-models/registry/wdbc-classifier/v1"
    ),
    "climb out of the registry": lambda o: _model(o).update(
        storageUri="s3://assay-models/registry/wdbc-classifier/v1/../../other/"
    ),
    "canary over 100": lambda o: o["spec"]["predictor"].update(canaryTrafficPercent=150),
}


@pytest.mark.parametrize("name", list(ALLOWED))
def test_the_deployer_may_move_the_model(name: str, policy: Obj, service: Obj) -> None:
    new = _patched(service, ALLOWED[name])
    assert refusals(policy, "UPDATE", new, service, DEPLOYER) == []


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_every_other_change_by_the_deployer_is_refused(
    name: str, policy: Obj, service: Obj
) -> None:
    new = _patched(service, lambda o: (_move(o), FORBIDDEN[name](o)))
    refused = refusals(policy, "UPDATE", new, service, DEPLOYER)
    assert refused, "admitted"
    assert not [m for m in refused if m.startswith("error:")], refused  # refused by a rule


def test_the_deployer_may_neither_create_nor_delete(policy: Obj, service: Obj) -> None:
    assert refusals(policy, "CREATE", service, None, DEPLOYER)
    assert refusals(policy, "DELETE", None, service, DEPLOYER)


def test_other_users_are_not_judged_by_this_policy(policy: Obj, service: Obj) -> None:
    new = _patched(service, FORBIDDEN["set a container image"])
    assert refusals(policy, "UPDATE", new, service, "system:serviceaccount:assay:admin") == []


def test_the_policy_and_its_binding_validate_against_their_schemas(rendered: list[Obj]) -> None:
    policy = find(rendered, "ValidatingAdmissionPolicy", POLICY)
    binding = find(rendered, "ValidatingAdmissionPolicyBinding", POLICY)
    assert core_errors(policy) == []
    assert core_errors(binding) == []
    assert binding["spec"]["policyName"] == POLICY
    assert binding["spec"]["validationActions"] == ["Deny"]


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies the deploy step's patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


@pytest.mark.parametrize("canary", [None, 10])
def test_the_deploy_steps_own_patch_is_admitted(
    canary: int | None, policy: Obj, service: Obj
) -> None:
    from assay.deploy import DeploySpec, build_patch

    spec = DeploySpec.for_model_uri(
        "s3://assay-models/registry/wdbc-classifier/v12", canary_traffic_percent=canary
    )
    new = _merge_patch(copy.deepcopy(service), build_patch(spec))
    assert new["spec"]["predictor"]["model"]["storageUri"].endswith("/v12/")
    assert refusals(policy, "UPDATE", new, service, DEPLOYER) == []
