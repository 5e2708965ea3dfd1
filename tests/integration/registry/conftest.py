"""A registry in a bucket of its own on the S3 stand-in (``minio_env``, tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from assay.registry import open_registry
from assay.registry.s3 import S3Registry


@pytest.fixture
def registry(minio_env: str) -> S3Registry:
    """A registry in a bucket of its own on the S3 stand-in."""
    reg = open_registry(f"s3://assay-models-{uuid.uuid4().hex[:8]}/registry")
    assert isinstance(reg, S3Registry)
    return reg
