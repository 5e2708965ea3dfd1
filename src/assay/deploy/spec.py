"""What to deploy: one immutable registry version behind one KServe InferenceService."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assay.errors import UsageError
from assay.registry import parse_model_uri

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"

DEFAULT_NAME = "wdbc-classifier"
DEFAULT_NAMESPACE = "assay"
DEFAULT_RUNTIME = "assay-classifier"
DEFAULT_SERVICE_ACCOUNT = "kserve-s3"
MODEL_VERSION_ANNOTATION = "assay.io/model-version"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
RAW_DEPLOYMENT_MODES = frozenset({"RawDeployment", "Standard"})

_VERSION_RE = re.compile(r"v[0-9]+")


@dataclass(frozen=True)
class DeploySpec:
    """What to deploy: one registry version of a model behind one InferenceService."""

    storage_uri: str
    model_version: str
    name: str = DEFAULT_NAME
    namespace: str = DEFAULT_NAMESPACE
    runtime: str = DEFAULT_RUNTIME
    model_format: str = "sklearn"
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    canary_traffic_percent: int | None = None  # 1..99: canary; None or 100: full rollout
    min_replicas: int = 1
    max_replicas: int = 3

    def __post_init__(self) -> None:
        pct = self.canary_traffic_percent
        if pct is not None and not 0 <= pct <= 100:
            raise UsageError(f"canary traffic percent must be between 0 and 100, got {pct}")
        if not self.storage_uri.startswith("s3://"):
            raise UsageError(
                f"storage URI {self.storage_uri!r} is not s3://: KServe's storage initializer "
                "cannot read a local registry, register the model in MinIO first"
            )
        # KServe's storage initializer downloads every object whose key starts with the URI's
        # path: without the trailing '/', '<version>model.joblib' or '<version>-x/...' beside
        # the version folder would land in /mnt/models too.
        object.__setattr__(self, "storage_uri", folder_uri(self.storage_uri))

    @classmethod
    def for_model_uri(cls, model_uri: str, **options: Any) -> DeploySpec:
        """The spec for a registry version folder URI, e.g. s3://assay-models/registry/m/v3."""
        root, model_name, version = parse_model_uri(model_uri)
        return cls(
            storage_uri=storage_uri_for(root, model_name, version),
            model_version=version,
            **options,
        )

    @property
    def is_canary(self) -> bool:
        """True when only part of the traffic goes to the new version."""
        return self.canary_traffic_percent is not None and self.canary_traffic_percent < 100

    @property
    def canary_field(self) -> int | None:
        """The value of spec.predictor.canaryTrafficPercent: None means a full rollout."""
        return self.canary_traffic_percent if self.is_canary else None


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy_model`` did and where the service answers."""

    name: str
    namespace: str
    storage_uri: str
    action: str  # "created" | "updated" | "unchanged"
    canary_traffic_percent: int | None
    url: str | None


def storage_uri_for(registry_root: str, model_name: str, version: str) -> str:
    """The version folder KServe copies to /mnt/models, e.g. s3://assay-models/registry/m/v3/."""
    if not registry_root.startswith("s3://"):
        raise UsageError(
            f"registry {registry_root!r} is not an s3:// root; an InferenceService can only "
            "load models registered in MinIO/S3 (e.g. s3://assay-models/registry)"
        )
    if not _VERSION_RE.fullmatch(version):
        raise UsageError(
            f"model version {version!r} is not an immutable version such as 'v3'; "
            "resolve aliases with the registry before deploying"
        )
    return folder_uri(f"{registry_root.rstrip('/')}/{model_name}/{version}")


def folder_uri(uri: str) -> str:
    """``uri`` with exactly one trailing '/', so that a prefix download takes only the folder."""
    return uri.rstrip("/") + "/"
