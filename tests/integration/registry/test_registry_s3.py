"""s3:// registry round trips through the real minio client against moto's S3 server.

moto stands in for MinIO (not installable here); see conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _s3_support import model_dir

from assay.errors import RegistryError
from assay.registry import open_registry
from assay.registry.s3 import S3Registry

pytestmark = [pytest.mark.s3, pytest.mark.integration]


def test_s3_round_trip_versions_and_aliases(registry: S3Registry, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000  # binary, larger than one read chunk
    v1 = registry.register("wdbc-classifier", model_dir(tmp_path / "a", payload))
    v2 = registry.register("wdbc-classifier", model_dir(tmp_path / "b", b"second"))

    assert (v1, v2) == ("v1", "v2")
    assert registry.versions("wdbc-classifier") == ["v1", "v2"]
    assert registry.models() == ["wdbc-classifier"]
    registry.set_alias("wdbc-classifier", "production", "v1")
    assert registry.aliases("wdbc-classifier") == {"latest": "v2", "production": "v1"}
    assert registry.card("wdbc-classifier", "production")["version"] == "v1"
    assert registry.uri("wdbc-classifier", "production") == (
        f"s3://{registry.bucket}/registry/wdbc-classifier/v1"
    )

    dest = registry.download("wdbc-classifier", "production", tmp_path / "dl")
    assert (dest / "model.joblib").read_bytes() == payload
    assert json.loads((dest / "model-card.json").read_text())["estimator"] == "ada_boost"


def test_s3_layout_matches_the_contract(registry: S3Registry, tmp_path: Path) -> None:
    registry.register("m", model_dir(tmp_path / "a", b"x"))
    keys = sorted(
        obj.object_name for obj in registry._client.list_objects(registry.bucket, recursive=True)
    )
    assert keys == [
        "registry/m/.claims/v1",
        "registry/m/aliases/latest.json",
        "registry/m/v1/model-card.json",
        "registry/m/v1/model.joblib",
    ]


def test_s3_never_overwrites_and_skips_incomplete(registry: S3Registry, tmp_path: Path) -> None:
    registry.register("m", model_dir(tmp_path / "a", b"first"))
    # an interrupted upload of v2: model without card
    registry._put("m/v2/model.joblib", b"half", "application/octet-stream")

    assert registry.versions("m") == ["v1"]
    stolen = {"model.joblib": b"x", "model-card.json": b"{}"}
    assert registry._publish_version("m", "v1", stolen) is False
    assert registry.register("m", model_dir(tmp_path / "b", b"third")) == "v3"
    assert registry.download("m", "v1", tmp_path / "d1").joinpath("model.joblib").read_bytes() == (
        b"first"
    )


def test_s3_errors_are_sentences(registry: S3Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="registry is empty"):
        registry.resolve("m")  # bucket does not even exist yet
    registry.register("m", model_dir(tmp_path / "a", b"x"))
    with pytest.raises(RegistryError, match="has no version 'v7'"):
        registry.card("m", "v7")
    with pytest.raises(RegistryError, match="has no alias 'production'"):
        registry.resolve("m", "production")


def test_s3_unreachable_endpoint_is_a_registry_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MINIO_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("MINIO_ACCESS_KEY", "k")
    monkeypatch.setenv("MINIO_SECRET_KEY", "s")
    monkeypatch.setenv("MINIO_REGION", "us-east-1")
    registry = open_registry("s3://bucket/reg")
    assert isinstance(registry, S3Registry)
    with pytest.raises(RegistryError, match="S3 registry could not list"):
        registry.versions("m")
