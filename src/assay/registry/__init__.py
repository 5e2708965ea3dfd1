"""Model registry: immutable versions and movable aliases, in a folder or an S3 bucket.

``open_registry(uri)`` picks the backend from the URI: ``file:///abs/path`` or a plain path
(FileRegistry), ``s3://bucket/prefix`` (S3Registry through the ``minio`` client, configured by
the MINIO_* environment variables). ``None`` means ``Settings().registry`` (ASSAY_REGISTRY,
default ``file://<cwd>/.assay/registry``).
"""

from __future__ import annotations

from assay.config import MinioSettings, Settings
from assay.registry.base import CARD_FILE, LATEST, MODEL_FILE, PRODUCTION, Registry
from assay.registry.file import FileRegistry
from assay.registry.s3 import S3Registry
from assay.registry.uri import parse_model_uri, parse_registry_uri

__all__ = [
    "CARD_FILE",
    "LATEST",
    "MODEL_FILE",
    "PRODUCTION",
    "FileRegistry",
    "Registry",
    "open_registry",
    "parse_model_uri",
    "parse_registry_uri",
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
