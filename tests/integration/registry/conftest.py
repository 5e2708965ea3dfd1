"""An S3-compatible server for registry tests: moto's standalone server on 127.0.0.1.

moto stands in for MinIO, which cannot be installed here; the registry talks to it with the
real ``minio`` client over real HTTP, exactly as it talks to MinIO in the cluster.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from assay.registry import open_registry
from assay.registry.s3 import S3Registry


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def minio_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MINIO_* variables pointing at the moto server (moto accepts any keys)."""
    monkeypatch.setenv("MINIO_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", "testing-access")
    monkeypatch.setenv("MINIO_SECRET_KEY", "testing-secret")
    monkeypatch.setenv("MINIO_SECURE", "false")
    monkeypatch.setenv("MINIO_REGION", "us-east-1")
    return s3_endpoint


@pytest.fixture
def registry(minio_env: str) -> S3Registry:
    """A registry in a bucket of its own on the S3 stand-in."""
    reg = open_registry(f"s3://assay-models-{uuid.uuid4().hex[:8]}/registry")
    assert isinstance(reg, S3Registry)
    return reg
