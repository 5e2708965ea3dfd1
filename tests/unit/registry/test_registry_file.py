"""file:// registry: round trips, immutability, aliases and the error sentences."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.errors import RegistryError
from assay.registry import FileRegistry, open_registry, parse_model_uri, parse_registry_uri


@pytest.fixture
def registry(tmp_path: Path) -> FileRegistry:
    reg = open_registry("file://" + str(tmp_path / "reg"))
    assert isinstance(reg, FileRegistry)
    return reg


def test_register_round_trip(registry: FileRegistry, model_dir: Path, tmp_path: Path) -> None:
    version = registry.register("wdbc-classifier", model_dir)

    assert version == "v1"
    assert registry.versions("wdbc-classifier") == ["v1"]
    assert registry.aliases("wdbc-classifier") == {"latest": "v1"}
    card = registry.card("wdbc-classifier")
    assert card["version"] == "v1"
    assert card["registered_at"].endswith("Z")
    assert card["estimator"] == "random_forest"
    dest = registry.download("wdbc-classifier", "latest", tmp_path / "out")
    assert (dest / "model.joblib").read_bytes() == b"model"
    assert json.loads((dest / "model-card.json").read_text())["version"] == "v1"
    # the source folder is left untouched
    assert "version" not in json.loads((model_dir / "model-card.json").read_text())


def test_versions_increase_and_latest_moves(
    registry: FileRegistry, tmp_path: Path, make_model: Callable[..., Path]
) -> None:
    for i in range(1, 12):
        make_model(tmp_path / f"m{i}", payload=f"model {i}".encode())
        assert registry.register("m", tmp_path / f"m{i}") == f"v{i}"

    assert registry.versions("m")[-3:] == ["v9", "v10", "v11"]  # numeric, not lexical, order
    assert registry.resolve("m", "latest") == "v11"
    assert registry.card("m", "v2")["version"] == "v2"
    assert registry.models() == ["m"]


def test_versions_are_immutable(
    registry: FileRegistry, model_dir: Path, tmp_path: Path, make_model: Callable[..., Path]
) -> None:
    registry.register("m", model_dir)
    first = (registry.path / "m" / "v1" / "model.joblib").read_bytes()
    other = make_model(tmp_path / "other", payload=b"other model")

    assert registry.register("m", other) == "v2"
    assert (registry.path / "m" / "v1" / "model.joblib").read_bytes() == first
    stolen = {"model.joblib": b"other model", "model-card.json": b"{}"}
    assert registry._publish_version("m", "v1", stolen) is False
    assert (registry.path / "m" / "v1" / "model.joblib").read_bytes() == first


def test_incomplete_version_is_invisible_and_never_reused(
    registry: FileRegistry, model_dir: Path
) -> None:
    # a crashed writer left v1 without its card: readers ignore it, writers skip its number
    (registry.path / "m" / "v1").mkdir(parents=True)
    (registry.path / "m" / "v1" / "model.joblib").write_bytes(b"half")

    assert registry.versions("m") == []
    assert registry.register("m", model_dir) == "v2"
    assert registry.versions("m") == ["v2"]
    assert not any(p.name.startswith(".staging") for p in (registry.path / "m").iterdir())


def test_promote_production_alias(registry: FileRegistry, model_dir: Path) -> None:
    registry.register("m", model_dir)
    registry.register("m", model_dir)

    registry.set_alias("m", "production", "v1")

    assert registry.aliases("m") == {"latest": "v2", "production": "v1"}
    assert registry.resolve("m", "production") == "v1"
    pointer = json.loads((registry.path / "m" / "aliases" / "production.json").read_text())
    assert pointer["version"] == "v1"
    assert "updated_at" in pointer
    assert registry.uri("m", "production") == registry.root + "/m/v1"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("v9", "Model 'm' has no version 'v9'"),
        ("staging", "Model 'm' has no alias 'staging'"),
        ("../etc", "Invalid version or alias '../etc'"),
    ],
)
def test_bad_refs(registry: FileRegistry, model_dir: Path, ref: str, message: str) -> None:
    registry.register("m", model_dir)
    with pytest.raises(RegistryError, match=message):
        registry.resolve("m", ref)


def test_unknown_model_names_the_known_ones(registry: FileRegistry, model_dir: Path) -> None:
    with pytest.raises(RegistryError, match="registry is empty"):
        registry.card("nope")
    registry.register("m", model_dir)
    with pytest.raises(RegistryError, match=r"No model named 'nope' .*models: m"):
        registry.download("nope", "latest", Path("unused"))


def test_set_alias_refuses_unknown_versions_and_bad_names(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register("m", model_dir)
    with pytest.raises(RegistryError, match="no version 'v2'"):
        registry.set_alias("m", "production", "v2")
    with pytest.raises(RegistryError, match="looks like a version"):
        registry.set_alias("m", "v3", "v1")
    with pytest.raises(RegistryError, match="is not a version"):
        registry.set_alias("m", "production", "latest")
    assert registry.aliases("m") == {"latest": "v1"}


def test_register_requires_both_files(registry: FileRegistry, tmp_path: Path) -> None:
    folder = tmp_path / "incomplete"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"x")
    with pytest.raises(RegistryError, match=r"missing model-card\.json"):
        registry.register("m", folder)
    assert registry.versions("m") == []


def test_missing_file_in_version_is_reported(
    registry: FileRegistry, model_dir: Path, tmp_path: Path
) -> None:
    registry.register("m", model_dir)
    os.remove(registry.path / "m" / "v1" / "model.joblib")
    with pytest.raises(RegistryError, match=r"model\.joblib is missing"):
        registry.download("m", "v1", tmp_path / "dest")


def test_default_root_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSAY_REGISTRY", raising=False)
    assert open_registry().root == "file://" + str(tmp_path / ".assay" / "registry")
    monkeypatch.setenv("ASSAY_REGISTRY", str(tmp_path / "elsewhere"))
    assert open_registry().root == "file://" + str(tmp_path / "elsewhere")


def test_uri_parsing() -> None:
    assert parse_model_uri("s3://assay-models/registry/wdbc-classifier/v3") == (
        "s3://assay-models/registry",
        "wdbc-classifier",
        "v3",
    )
    assert parse_model_uri("file:///abs/.assay/registry/wdbc-classifier/production") == (
        "file:///abs/.assay/registry",
        "wdbc-classifier",
        "production",
    )
    location = parse_registry_uri("s3://bucket/some/prefix/")
    assert (location.bucket, location.prefix, location.root) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix",
    )
    with pytest.raises(RegistryError, match="unsupported scheme 'gs'"):
        parse_registry_uri("gs://bucket")
    with pytest.raises(RegistryError, match="not of the form"):
        parse_model_uri("s3://m/v1")


def test_concurrent_registrations_get_distinct_versions(
    registry: FileRegistry, tmp_path: Path, make_model: Callable[..., Path]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    folders = [make_model(tmp_path / f"c{i}", payload=f"model {i}".encode()) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(lambda folder: registry.register("m", folder), folders))

    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 9)]
    for folder, version in zip(folders, versions, strict=True):
        stored = (registry.path / "m" / version / "model.joblib").read_bytes()
        assert stored == (folder / "model.joblib").read_bytes()
        assert registry.card("m", version)["version"] == version
