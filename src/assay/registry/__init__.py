"""Model registry: immutable versions and movable aliases, in a folder or an S3 bucket.

``open_registry(uri)`` picks the backend from the URI: ``file:///abs/path`` or a plain path
(FileRegistry), ``s3://bucket/prefix`` (S3Registry through the ``minio`` client, configured by
the MINIO_* environment variables). ``None`` means ``Settings().registry`` (ASSAY_REGISTRY,
default ``file://<cwd>/.assay/registry``).
"""

from __future__ import annotations

from pathlib import Path

from assay.config import MinioSettings, ModelTrustSettings, Settings
from assay.errors import RegistryError
from assay.registry.base import CARD_FILE, LATEST, MODEL_FILE, PRODUCTION, Registry
from assay.registry.file import FileRegistry
from assay.registry.s3 import S3Registry
from assay.registry.signing import ModelTrust, Signer, load_signer, local_signer, trust_from
from assay.registry.uri import parse_model_uri, parse_registry_uri

__all__ = [
    "CARD_FILE",
    "LATEST",
    "MODEL_FILE",
    "PRODUCTION",
    "FileRegistry",
    "ModelTrust",
    "Registry",
    "Signer",
    "model_trust",
    "open_registry",
    "parse_model_uri",
    "parse_registry_uri",
    "registry_signer",
]


def open_registry(uri: str | None = None, minio: MinioSettings | None = None) -> Registry:
    """Open the registry at ``uri`` (None: ASSAY_REGISTRY or ``.assay/registry``)."""
    if uri is None:
        uri = Settings(**{}).registry
    location = parse_registry_uri(uri)
    if location.scheme == "s3":
        return S3Registry(location.bucket, location.prefix, settings=minio)
    assert location.path is not None
    return FileRegistry(location.path)


def local_keys_dir(registry_root: str | None) -> Path | None:
    """``<registry parent>/keys`` for a file:// registry (``.assay/keys`` beside the default
    ``.assay/registry``); None for s3:// or no registry."""
    if not registry_root:
        return None
    location = parse_registry_uri(registry_root)
    return None if location.path is None else location.path.parent / "keys"


def model_trust(
    settings: ModelTrustSettings | None = None, registry_root: str | None = None
) -> ModelTrust:
    """The trusted keys of ``settings`` (ASSAY_TRUSTED_KEYS); when it names none, the local
    registry's own public key folder."""
    settings = settings if settings is not None else ModelTrustSettings()
    paths: list[str | Path] = [p.strip() for p in settings.trusted_keys.split(",") if p.strip()]
    local = local_keys_dir(registry_root)
    if not paths and local is not None and local.is_dir():
        paths = [local]
    return trust_from(paths, allow_unsigned=settings.allow_unsigned_models)


def registry_signer(registry_root: str, settings: ModelTrustSettings | None = None) -> Signer:
    """The register step's key: ASSAY_SIGNING_KEY, else (file:// only) the local registry's
    key, made on first use. An s3:// registry without a key is an error: the cluster's register
    step mounts its key from a Secret."""
    settings = settings if settings is not None else ModelTrustSettings()
    if settings.signing_key:
        return load_signer(Path(settings.signing_key))
    local = local_keys_dir(registry_root)
    if local is None:
        raise RegistryError(
            f"No signing key for registry {registry_root}: set ASSAY_SIGNING_KEY to the register "
            "step's PEM Ed25519 private key (docs/design.md, signed model versions)."
        )
    return local_signer(local)
