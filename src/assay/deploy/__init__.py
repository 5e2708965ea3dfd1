"""Roll a registered model version out to its KServe InferenceService (``deploy_model``).

- ``spec``: what to deploy (``DeploySpec``, the registry version's storage URI)
- ``manifest``: the InferenceService object and the patch moving it to a new version
- ``kube``: the API calls and what their failures mean
- ``status``: reading Ready / failed from the service's status
- ``rollout``: create or patch, then wait until Ready
- ``verify``: refuse a version whose model file does not match its card, before the cluster
"""

from __future__ import annotations

from assay.deploy.kube import CustomObjectsApi, DeployError, kubernetes_api
from assay.deploy.manifest import build_inference_service, build_patch
from assay.deploy.rollout import deploy_model, wait_until_ready
from assay.deploy.spec import (
    API_VERSION,
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    DEFAULT_RUNTIME,
    DEFAULT_SERVICE_ACCOUNT,
    DEPLOYMENT_MODE_ANNOTATION,
    GROUP,
    MODEL_VERSION_ANNOTATION,
    PLURAL,
    RAW_DEPLOYMENT_MODES,
    VERSION,
    DeployResult,
    DeploySpec,
    storage_uri_for,
)
from assay.deploy.verify import deploy_verified, verify_version

__all__ = [
    "API_VERSION",
    "DEFAULT_NAME",
    "DEFAULT_NAMESPACE",
    "DEFAULT_RUNTIME",
    "DEFAULT_SERVICE_ACCOUNT",
    "DEPLOYMENT_MODE_ANNOTATION",
    "GROUP",
    "MODEL_VERSION_ANNOTATION",
    "PLURAL",
    "RAW_DEPLOYMENT_MODES",
    "VERSION",
    "CustomObjectsApi",
    "DeployError",
    "DeployResult",
    "DeploySpec",
    "build_inference_service",
    "build_patch",
    "deploy_model",
    "deploy_verified",
    "kubernetes_api",
    "storage_uri_for",
    "verify_version",
    "wait_until_ready",
]
