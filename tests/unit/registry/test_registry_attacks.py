"""Attacks on a file:// registry: a tampered model file, forged names, private files.

Each test performs the attack against a real folder registry (and the real loader, CLI and
unpickling path) and asserts that it fails with a clear error, nothing stored being changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from _hostile import code_running_pickle
from _signing import SIGNER, TRUST
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import RegistryError
from assay.registry import FileRegistry, open_registry, parse_model_uri, registry_signer
from assay.registry.integrity import ModelIntegrityError, verify_model_file
from assay.serving.classifier_versions import load_folder

NAME = "wdbc-classifier"
BAD_NAMES = ["prod\n", "../x", "a/b", "", "prod\r", " prod", "x" * 129]
runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path) -> FileRegistry:
    reg = open_registry("file://" + str(tmp_path / "reg"))
    assert isinstance(reg, FileRegistry)
    return reg


def _tamper(registry: FileRegistry, version: str, data: bytes) -> Path:
    path = registry.path / NAME / version / "model.joblib"
    path.write_bytes(data)
    return path


def test_registration_records_the_model_digest_and_size(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register(NAME, model_dir, SIGNER)
    card = registry.card(NAME, "v1")
    assert card["model_sha256"] == hashlib.sha256(b"model").hexdigest()
    assert card["model_size"] == len(b"model")
    assert registry.verify(NAME, "latest", TRUST) == f"ok (signed by {SIGNER.key_id})"


def test_tampered_model_file_is_refused_before_unpickling(
    registry: FileRegistry, model_dir: Path, tmp_path: Path
) -> None:
    registry.register(NAME, model_dir, SIGNER)
    marker = tmp_path / "pwned"
    evil = code_running_pickle(marker)
    _tamper(registry, "v1", evil)
    folder = registry.download(NAME, "v1", tmp_path / "served")

    with pytest.raises(ModelIntegrityError) as caught:
        load_folder(folder, TRUST, compile=False)

    message = str(caught.value)
    assert hashlib.sha256(evil).hexdigest() in message
    assert hashlib.sha256(b"model").hexdigest() in message
    assert not marker.exists()  # the pickle never ran


def test_tampered_model_file_of_the_same_size_is_refused(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register(NAME, model_dir, SIGNER)
    _tamper(registry, "v1", b"MODEL")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        registry.verify(NAME, "v1", TRUST)


def test_truncated_model_file_is_refused_naming_both_sizes(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register(NAME, model_dir, SIGNER)
    _tamper(registry, "v1", b"mod")
    with pytest.raises(ModelIntegrityError, match=r"5 bytes;.*3 bytes"):
        registry.verify(NAME, "v1", TRUST)


def test_models_show_of_a_tampered_version_exits_with_an_integrity_error(
    registry: FileRegistry, model_dir: Path
) -> None:
    local_key = registry_signer(registry.root)  # the local registry's own, made on first use
    registry.register(NAME, model_dir, local_key)
    registry.register(NAME, model_dir, local_key)
    ok = runner.invoke(app, ["models", "show", NAME, "v1", "--registry", registry.root])
    assert ok.exit_code == 0, ok.output
    assert f"integrity: ok (signed by {local_key.key_id})" in ok.output
    _tamper(registry, "v2", b"tampered")
    result = runner.invoke(app, ["models", "show", NAME, "v2", "--registry", registry.root])
    assert result.exit_code == 5, result.output
    output = " ".join(result.output.split())
    assert "changed after it was signed" in output and "sha256" in output


def test_legacy_registered_card_without_digest_is_refused_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"model")
    card = {"version": "v1", "registered_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(ModelIntegrityError, match="re-register"):
        verify_model_file(tmp_path / "model.joblib", card, "legacy v1", allow_unverified=False)
    status = verify_model_file(tmp_path / "model.joblib", card, "legacy v1", allow_unverified=True)
    assert status.startswith("unverified")


def test_forged_digest_of_another_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"model")
    card = {"model_sha256": ["not", "a", "digest"], "model_size": 5}
    with pytest.raises(ModelIntegrityError, match="model_sha256"):
        verify_model_file(tmp_path / "model.joblib", card, "forged", allow_unverified=True)


def test_registered_files_and_aliases_are_readable_by_other_users(
    registry: FileRegistry, model_dir: Path
) -> None:
    old = os.umask(0o022)
    try:
        registry.register(NAME, model_dir)
        registry.set_alias(NAME, "production", "v1")
    finally:
        os.umask(old)
    for relative in ("v1/model.joblib", "v1/model-card.json", "aliases/latest.json"):
        mode = stat.S_IMODE((registry.path / NAME / relative).stat().st_mode)
        assert mode == 0o644, f"{relative}: {oct(mode)}"
    mode = stat.S_IMODE((registry.path / NAME / "aliases" / "production.json").stat().st_mode)
    assert mode == 0o644


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_forged_model_name_is_refused_on_register(
    registry: FileRegistry, model_dir: Path, bad: str
) -> None:
    with pytest.raises(RegistryError, match="Invalid model name"):
        registry.register(bad, model_dir)
    assert not registry.path.exists() or registry.models() == []


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_forged_alias_is_refused_on_set_alias_and_resolve(
    registry: FileRegistry, model_dir: Path, bad: str
) -> None:
    registry.register(NAME, model_dir)
    with pytest.raises(RegistryError, match="Invalid alias"):
        registry.set_alias(NAME, bad, "v1")
    with pytest.raises(RegistryError, match="Invalid version or alias"):
        registry.resolve(NAME, bad)
    assert registry.aliases(NAME) == {"latest": "v1"}


@pytest.mark.parametrize("bad", ["v1\n", "v01", "v1/", "v0"])
def test_forged_version_is_not_a_version(registry: FileRegistry, model_dir: Path, bad: str) -> None:
    registry.register(NAME, model_dir)
    with pytest.raises(RegistryError):
        registry.set_alias(NAME, "production", bad)
    assert registry.aliases(NAME) == {"latest": "v1"}


@pytest.mark.parametrize("bad", ["prod\n", "a\n"])
def test_forged_name_in_a_model_uri_is_refused(bad: str) -> None:
    with pytest.raises(RegistryError, match="Invalid"):
        parse_model_uri(f"s3://bucket/registry/{NAME}/{bad}")
    with pytest.raises(RegistryError, match="Invalid"):
        parse_model_uri(f"s3://bucket/registry/{bad}/v1")


@pytest.mark.parametrize("bad", ["prod\n", "../x"])
def test_forged_alias_on_the_command_line_exits_with_one_sentence(
    registry: FileRegistry, model_dir: Path, bad: str
) -> None:
    registry.register(NAME, model_dir)
    result = runner.invoke(
        app, ["models", "promote", NAME, "v1", "--alias", bad, "--registry", registry.root]
    )
    assert result.exit_code == 3, result.output
    assert "Invalid alias" in result.output
    assert registry.aliases(NAME) == {"latest": "v1"}


def test_alias_file_with_a_forged_name_planted_in_the_folder_is_ignored(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register(NAME, model_dir)
    planted = registry.path / NAME / "aliases" / "prod\n.json"
    planted.write_text(json.dumps({"version": "v1"}))
    assert registry.aliases(NAME) == {"latest": "v1"}
    with pytest.raises(RegistryError, match="Invalid version or alias"):
        registry.resolve(NAME, "prod\n")
