"""Refuse to roll out a registry version that is not exactly what the register step signed.

Runs before any call to the cluster: the deploy step reads the version from the registry (MinIO)
and checks its signature against the trusted public keys (ASSAY_TRUSTED_KEYS, a ConfigMap
mounted in the step) and ``model.joblib`` against its card (:mod:`assay.registry.signing`).
"""

from __future__ import annotations

from typing import Any

from assay.deploy.kube import DeployError
from assay.deploy.rollout import deploy_model
from assay.deploy.spec import DeployResult, DeploySpec
from assay.errors import RegistryError
from assay.obs.logging import get_logger
from assay.registry import ModelTrust, Registry, model_trust, open_registry, parse_model_uri

log = get_logger(__name__)


def verify_version(
    spec: DeploySpec, registry: Registry | None = None, trust: ModelTrust | None = None
) -> str:
    """``"ok (signed by ...)"`` when the version is what was signed; DeployError otherwise."""
    root, name, version = parse_model_uri(spec.storage_uri)
    registry = registry if registry is not None else open_registry(root)
    trust = trust if trust is not None else model_trust(registry_root=registry.root)
    try:
        status = registry.verify(name, version, trust)
    except RegistryError as exc:
        raise DeployError(f"Refusing to deploy {spec.storage_uri}: {exc}") from exc
    log.info("deploy.model_verified", storage_uri=spec.storage_uri, integrity=status)
    return status


def deploy_verified(
    spec: DeploySpec,
    *,
    registry: Registry | None = None,
    trust: ModelTrust | None = None,
    **options: Any,
) -> DeployResult:
    """Verify the version's signature and model file, then ``deploy_model(spec, **options)``."""
    verify_version(spec, registry, trust)
    return deploy_model(spec, **options)
