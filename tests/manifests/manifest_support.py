"""Helpers for the Kubernetes manifest tests: rendered kustomize targets and validators.

No cluster exists here: manifests are rendered with `kubectl kustomize` (or a standalone
`kustomize`), core kinds are validated with the `kubernetes-validate` schemas, and custom
resources with jsonschema against the openAPIV3Schema of the CRDs in ../shared/crds (the
`shared/` folder that sits beside the repository; tests needing it skip where it is absent).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from _kustomize import (
    REPO_ROOT,
    TARGETS,
    Obj,
    find,
    find_generated,
    generated_name,
    render,
    render_path,
)

__all__ = [
    "REPO_ROOT",
    "TARGETS",
    "Obj",
    "find",
    "find_generated",
    "generated_name",
    "render",
    "render_path",
]

CRD_DIR = REPO_ROOT.parent / "shared" / "crds"
KUBERNETES_VERSION = "1.34"


# --------------------------------------------------------------------------------------------
# CRD schemas
# --------------------------------------------------------------------------------------------


def require_crds() -> Path:
    if not CRD_DIR.is_dir():
        pytest.skip(f"CRD folder {CRD_DIR} is absent (shared/ must sit beside the repository)")
    return CRD_DIR


def strict_schema(schema: Any) -> Any:
    """An openAPIV3Schema as the API server applies it: unknown fields are errors.

    The API server prunes fields a structural schema does not declare; for a manifest that
    means a typo silently disappears. Here every object schema with `properties` and no
    `additionalProperties` / `x-kubernetes-preserve-unknown-fields` rejects unknown fields.
    """
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def _load_yaml_docs(path: Path) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are megabytes
    return [doc for doc in yaml.load_all(path.read_text(), Loader=loader) if doc]


@cache
def _crd_file_schemas(path: Path) -> dict[tuple[str, str], Any]:
    schemas: dict[tuple[str, str], Any] = {}
    for doc in _load_yaml_docs(path):
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        for version in doc["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schemas[(f"{group}/{version['name']}", kind)] = strict_schema(schema)
    return schemas


def crd_schema(api_version: str, kind: str) -> Any:
    """The strict schema for (apiVersion, kind); KeyError when no CRD in ../shared/crds has it.

    CRD files are named <group>_<plural>.yaml; the matching file is read first, all of them
    only if it does not hold the kind.
    """
    crds = require_crds()
    group = api_version.split("/")[0]
    guess = crds / f"{group}_{kind.lower()}s.yaml"
    paths = [guess] if guess.is_file() else []
    paths += [p for p in sorted(crds.glob("*.yaml")) if p != guess]
    for path in paths:
        schemas = _crd_file_schemas(path)
        if (api_version, kind) in schemas:
            return schemas[(api_version, kind)]
    raise KeyError((api_version, kind))


@cache
def _crd_validator(api_version: str, kind: str) -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(crd_schema(api_version, kind))


def crd_errors(obj: Obj) -> list[str]:
    """jsonschema errors of a custom resource against its CRD (KeyError if no CRD)."""
    validator = _crd_validator(obj["apiVersion"], obj["kind"])
    return [
        f"{'/'.join(str(p) for p in err.absolute_path)}: {err.message}"
        for err in validator.iter_errors(obj)
    ]


def core_errors(obj: Obj) -> list[str]:
    """kubernetes-validate errors of a core object (strict: unknown fields are errors)."""
    return list(_core_errors(json.dumps(obj, sort_keys=True)))


@cache
def _core_errors(obj_json: str) -> tuple[str, ...]:
    # Cached by content: the targets share most objects and each call re-reads the schemas.
    import kubernetes_validate

    try:
        kubernetes_validate.validate(json.loads(obj_json), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return (f"{'/'.join(str(p) for p in err.path)}: {err.message}",)
    return ()


# --------------------------------------------------------------------------------------------
# Pod specs inside workloads and custom resources
# --------------------------------------------------------------------------------------------


def pod_specs(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, pod-spec-like dict) for every pod the object will create."""
    kind, spec = obj["kind"], obj.get("spec", {})
    name = f"{kind}/{obj['metadata']['name']}"
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        yield name, spec["template"]["spec"]
    elif kind == "RayCluster":
        yield f"{name} head", spec["headGroupSpec"]["template"]["spec"]
        for group in spec.get("workerGroupSpecs", []):
            yield f"{name} {group['groupName']}", group["template"]["spec"]
    elif kind == "InferenceService":
        predictor = spec["predictor"]
        containers = list(predictor.get("containers", []))
        if "model" in predictor:
            containers.append({"name": "kserve-container", **predictor["model"]})
        yield name, {**predictor, "containers": containers}
    elif kind in {"ServingRuntime", "ClusterServingRuntime"}:
        yield name, spec
