"""ConfigMaps (and the scorer's callers Secret) that pods read at start-up carry kustomize's
content hash, so a change renames them and rolls the pods; every reference in every workload and
custom resource (InferenceService, ServingRuntime, RayCluster) resolves to a rendered object.

kustomize rewrites references only in fields it knows: the core kinds', and those
manifests/base/kustomizeconfig/namereference.yaml adds for the custom resources. A reference it
missed would still name the generator's bare name, which no rendered object has.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from manifest_support import (
    REPO_ROOT,
    find,
    find_generated,
    generated_name,
    pod_specs,
    render,
    render_path,
)

pytestmark = pytest.mark.manifests

HASHED = {
    ("ConfigMap", "bias-scorer-config"),  # the scorer's ensemble
    ("ConfigMap", "bias-scorer-limits"),  # the scorer's limits
    ("Secret", "bias-scorer-callers"),  # the scorer's callers (dev; prod's operator makes it)
}
"""Read once at start-up: a change must roll the pods."""
STABLE = {
    ("ConfigMap", "minio-policies"): "the MinIO setup Job's pod template is immutable",
    ("ConfigMap", "assay-grafana-dashboard"): "Grafana's sidecar finds it by label",
    ("ConfigMap", "assay-model-trusted-keys"): "the compiled training pipeline mounts it",
    ("ConfigMap", "assay-pipeline-env"): "the compiled pipelines mount it (not generated)",
    ("Secret", "minio-root-credentials"): "the MinIO setup Job's pod template is immutable",
    ("Secret", "minio-serving-credentials"): "the MinIO setup Job's pod template is immutable",
    ("Secret", "minio-credentials"): "the compiled pipelines read it",
    ("Secret", "llm-provider-keys"): "the compiled bias-study pipeline reads it",
    ("Secret", "assay-model-signing-key"): "the compiled training pipeline mounts it",
    ("Secret", "assay-redis"): "the compiled bias-study pipeline reads it",
    ("Secret", "assay-deployer-token"): "a ServiceAccount token Secret (not generated)",
}
"""Why each other ConfigMap and Secret keeps its name."""
OPERATOR_SECRETS = {
    "minio-root-credentials",
    "minio-credentials",
    "minio-serving-credentials",
    "llm-provider-keys",
    "assay-redis",
    "bias-scorer-callers",
    "assay-model-signing-key",
    "assay-deployer-token",
}
"""prod renders no Secret: its operator creates these (prod/kustomization.yaml)."""
OPERATOR_CONFIGMAPS = {"assay-model-trusted-keys"}


def _references(spec: dict[str, Any]) -> Iterator[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None, optional) of every ConfigMap/Secret a pod spec reads."""
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            ref = volume["configMap"]
            yield "ConfigMap", ref["name"], None, bool(ref.get("optional"))
        if "secret" in volume:
            ref = volume["secret"]
            yield "Secret", ref["secretName"], None, bool(ref.get("optional"))
        for source in volume.get("projected", {}).get("sources", []):
            for kind, field in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if field in source:
                    yield kind, source[field]["name"], None, bool(source[field].get("optional"))
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for source in container.get("envFrom", []):
            for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if field in source:
                    yield kind, source[field]["name"], None, bool(source[field].get("optional"))
        for item in container.get("env", []):
            value_from = item.get("valueFrom", {})
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field in value_from:
                    ref = value_from[field]
                    yield kind, ref["name"], ref["key"], bool(ref.get("optional"))


def _all_references(objs: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None, bool]]:
    found = []
    for obj in objs:
        for where, spec in pod_specs(obj):
            found += [(where, *ref) for ref in _references(spec)]
        if obj["kind"] == "ServiceAccount":
            name = f"ServiceAccount/{obj['metadata']['name']}"
            found += [(name, "Secret", s["name"], None, False) for s in obj.get("secrets", [])]
    return found


def _rendered(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_every_reference_resolves_to_a_rendered_object(target: str) -> None:
    objs = render(target)
    references = _all_references(objs)
    assert {kind for _, kind, *_ in references} == {"ConfigMap", "Secret"}
    prod = target.startswith("prod")
    for where, kind, name, key, optional in references:
        rendered = _rendered(objs, kind)
        if name not in rendered:
            left_to_operator = OPERATOR_SECRETS if kind == "Secret" else OPERATOR_CONFIGMAPS
            assert optional or (prod and name in left_to_operator), (
                f"{where} reads {kind} {name}, which {target} does not render"
            )
            continue
        data = {**rendered[name].get("data", {}), **rendered[name].get("stringData", {})}
        assert key is None or key in data or optional, f"{where}: {kind} {name} has no {key}"


def test_pods_read_the_hashed_names_and_every_stable_name_has_a_reason(target: str) -> None:
    objs = render(target)
    read = {(kind, name) for _, kind, name, _, _ in _all_references(objs)}
    for kind, base in HASHED:
        names = [name for k, name in read if k == kind and generated_name(base, name)]
        if target.startswith("prod") and kind == "Secret":
            assert names == [base]  # the operator's Secret: kustomize does not generate it
            continue
        assert len(names) == 1 and names[0] != base, f"{kind} {base}: pods read {names}"
        assert names[0] == find_generated(objs, kind, base)["metadata"]["name"]
    for kind in ("ConfigMap", "Secret"):
        for name in _rendered(objs, kind):
            hashed = any(generated_name(b, name) and name != b for k, b in HASHED if k == kind)
            assert hashed or (kind, name) in STABLE, f"{kind} {name}: hashed, or say why not"


def _copy_manifests(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "manifests", root / "manifests")
    return root / "manifests"


def _scorer(objs: list[dict[str, Any]]) -> dict[str, Any]:
    predictor: dict[str, Any] = find(objs, "InferenceService", "bias-scorer")["spec"]["predictor"]
    return predictor


def _read_by_scorer(objs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(kind, generator name) -> the name the scorer's pod spec reads."""
    return {
        (kind, base): name
        for kind, name, _, _ in _references(_scorer(objs))
        for k, base in HASHED
        if k == kind and generated_name(base, name)
    }


def test_a_changed_limit_ensemble_or_key_file_renames_what_the_scorer_reads(
    tmp_path: Path,
) -> None:
    """Each edit renames exactly the object it changes, in the object and in the pod spec, so
    the scorer's pods roll; the others keep their names."""
    manifests = _copy_manifests(tmp_path)
    dev = manifests / "overlays" / "dev"
    before = _read_by_scorer(render_path(dev))
    assert set(before) == HASHED

    base = manifests / "base" / "kustomization.yaml"
    text = base.read_text()
    assert "ASSAY_SCORER_MAX_BATCH=64" in text
    base.write_text(text.replace("ASSAY_SCORER_MAX_BATCH=64", "ASSAY_SCORER_MAX_BATCH=32"))
    (dev / "sim-ensemble.yaml").write_text((dev / "sim-ensemble.yaml").read_text() + "\n# edit\n")
    after_edits = render_path(dev)
    after = _read_by_scorer(after_edits)
    assert after[("ConfigMap", "bias-scorer-limits")] != before[("ConfigMap", "bias-scorer-limits")]
    assert after[("ConfigMap", "bias-scorer-config")] != before[("ConfigMap", "bias-scorer-config")]
    assert after[("Secret", "bias-scorer-callers")] == before[("Secret", "bias-scorer-callers")]
    limits = find(after_edits, "ConfigMap", after[("ConfigMap", "bias-scorer-limits")])
    assert limits["data"]["ASSAY_SCORER_MAX_BATCH"] == "32"

    callers = dev / "bias-scorer-callers.yaml"
    callers.write_text(re.sub(r"0001", "0002", callers.read_text(), count=1))
    rotated = _read_by_scorer(render_path(dev))
    assert rotated[("Secret", "bias-scorer-callers")] != after[("Secret", "bias-scorer-callers")]
    assert (
        rotated[("ConfigMap", "bias-scorer-limits")] == after[("ConfigMap", "bias-scorer-limits")]
    )
