"""Refuse to roll out a registry version whose model file does not match its card.

Runs before any call to the cluster: the deploy step reads the version from the registry (MinIO)
and checks ``model.joblib``'s SHA-256 and size against the card (:mod:`assay.registry.integrity`).
"""

from __future__ import annotations

from typing import Any

from assay.deploy.kube import DeployError
from assay.deploy.rollout import deploy_model
from assay.deploy.spec import DeployResult, DeploySpec
from assay.errors import RegistryError
from assay.obs.logging import get_logger
from assay.registry import Registry, open_registry, parse_model_uri

log = get_logger(__name__)


def verify_version(spec: DeploySpec, registry: Registry | None = None) -> str:
    """``"ok"`` when the version's model file matches its card; DeployError otherwise."""
    root, name, version = parse_model_uri(spec.storage_uri)
    registry = registry if registry is not None else open_registry(root)
    try:
        status = registry.verify(name, version)
    except RegistryError as exc:
        raise DeployError(f"Refusing to deploy {spec.storage_uri}: {exc}") from exc
    log.info("deploy.model_verified", storage_uri=spec.storage_uri, integrity=status)
    return status


def deploy_verified(
    spec: DeploySpec, *, registry: Registry | None = None, **options: Any
) -> DeployResult:
    """Verify the version's model file against its card, then ``deploy_model(spec, **options)``."""
    verify_version(spec, registry)
    return deploy_model(spec, **options)
