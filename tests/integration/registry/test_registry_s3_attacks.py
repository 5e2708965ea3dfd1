"""Attacks on an s3:// registry through the real minio client against moto's S3 server.

moto stands in for MinIO (not installable here); see conftest.py. The attacker has write access
to the bucket and swaps a registered version's model object; readers must refuse it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from _s3_support import model_dir, put_raw
from _signing import SIGNER, TRUST, write_public_key
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import RegistryError
from assay.registry.integrity import ModelIntegrityError
from assay.registry.s3 import S3Registry

pytestmark = [pytest.mark.s3, pytest.mark.integration]
NAME = "wdbc-classifier"
runner = CliRunner()


def _swap_model_object(registry: S3Registry, version: str, data: bytes) -> None:
    put_raw(registry, f"{NAME}/{version}/model.joblib", data)


def test_s3_card_records_the_digest_of_the_uploaded_model(
    registry: S3Registry, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 1000
    registry.register(NAME, model_dir(tmp_path / "m", payload), SIGNER)
    card = registry.card(NAME, "v1")
    assert card["model_sha256"] == hashlib.sha256(payload).hexdigest()
    assert card["model_size"] == len(payload)
    assert registry.verify(NAME, "latest", TRUST) == f"ok (signed by {SIGNER.key_id})"


def test_s3_swapped_model_object_is_refused(
    registry: S3Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(NAME, model_dir(tmp_path / "m", b"genuine model"), SIGNER)
    _swap_model_object(registry, "v1", b"evil model!!!")
    with pytest.raises(ModelIntegrityError, match="changed after it was signed"):
        registry.verify(NAME, "v1", TRUST)
    monkeypatch.setenv("ASSAY_TRUSTED_KEYS", str(write_public_key(tmp_path / "trusted")))
    result = runner.invoke(app, ["models", "show", NAME, "v1", "--registry", registry.root])
    assert result.exit_code == 5, result.output
    assert "changed after it was signed" in " ".join(result.output.split())


@pytest.mark.parametrize("bad", ["prod\n", "../x", "a/b", ""])
def test_s3_forged_names_are_refused_and_nothing_is_written(
    registry: S3Registry, tmp_path: Path, bad: str
) -> None:
    registry.register(NAME, model_dir(tmp_path / "m", b"model"))
    with pytest.raises(RegistryError, match="Invalid alias"):
        registry.set_alias(NAME, bad, "v1")
    with pytest.raises(RegistryError, match="Invalid model name"):
        registry.register(bad, tmp_path / "m")
    assert registry.aliases(NAME) == {"latest": "v1"}
    assert registry.models() == [NAME]
