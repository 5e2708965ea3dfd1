"""Signed model versions, attacked where an attacker can write: the version folder.

The attacker holds the registry's write rights (every pipeline step's MinIO user), not the
register step's private key. Each test changes a signed version the way the attack would and
asserts that ``Registry.verify`` (models show, the deploy step) and the server's loader refuse
it before anything unpickles the model. Before signing, (a)-(c) passed both checks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from _hostile import code_running_pickle
from _signing import SIGNER, TRUST, UNSIGNED_OK, write_public_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from assay.cli import app
from assay.registry import FileRegistry, model_trust, open_registry, registry_signer
from assay.registry.integrity import ModelIntegrityError
from assay.registry.signing import ModelTrust, Signer, trust_from
from assay.serving.classifier_versions import load_folder

NAME = "wdbc-classifier"
runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path, model_dir: Path) -> FileRegistry:
    reg = open_registry(f"file://{tmp_path / 'registry'}")
    assert isinstance(reg, FileRegistry)
    reg.register(NAME, model_dir, SIGNER)
    return reg


def _version(registry: FileRegistry, version: str = "v1") -> Path:
    return registry.path / NAME / version


def _edit_card(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model-card.json").read_text())
    card.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        card.pop(key, None)
    (folder / "model-card.json").write_text(json.dumps(card))


def _refused_everywhere(registry: FileRegistry, tmp_path: Path, match: str) -> None:
    with pytest.raises(ModelIntegrityError, match=match):
        registry.verify(NAME, "v1", TRUST)
    with pytest.raises(ModelIntegrityError, match=match):
        load_folder(_version(registry), TRUST, compile=False)
    assert not (tmp_path / "pwned").exists()  # no planted pickle ran


def test_a_signed_version_verifies_and_names_its_key(registry: FileRegistry) -> None:
    assert registry.verify(NAME, "v1", TRUST) == f"ok (signed by {SIGNER.key_id})"


def test_a_card_only_edit_is_refused(registry: FileRegistry, tmp_path: Path) -> None:
    """(a) threshold 1.0 in the card: every patient would be labelled benign."""
    _edit_card(_version(registry), threshold=1.0)
    _refused_everywhere(registry, tmp_path, r"model-card\.json was changed after it was signed")


def test_a_pickle_with_its_digest_recomputed_in_the_card_is_refused(
    registry: FileRegistry, tmp_path: Path
) -> None:
    """(b) swap the pickle and write its digest and size into the card."""
    evil = code_running_pickle(tmp_path / "pwned")
    folder = _version(registry)
    (folder / "model.joblib").write_bytes(evil)
    _edit_card(folder, model_sha256=hashlib.sha256(evil).hexdigest(), model_size=len(evil))
    _refused_everywhere(registry, tmp_path, "changed after it was signed")


def test_a_stripped_unsigned_version_is_refused_unless_explicitly_allowed(
    registry: FileRegistry, tmp_path: Path
) -> None:
    """(c) swap the pickle, delete the signature, strip model_sha256 and registered_at."""
    folder = _version(registry)
    (folder / "model.joblib").write_bytes(code_running_pickle(tmp_path / "pwned"))
    (folder / "signature.json").unlink()
    _edit_card(folder, model_sha256=None, model_size=None, registered_at=None)
    _refused_everywhere(registry, tmp_path, "unsigned")
    assert UNSIGNED_OK.verify({"model.joblib": b"x"}, "here").startswith("unsigned (allowed")


def test_an_added_file_is_refused(registry: FileRegistry, tmp_path: Path) -> None:
    (_version(registry) / "extra.pkl").write_bytes(b"planted")
    with pytest.raises(ModelIntegrityError, match=r"extra\.pkl"):
        registry.verify(NAME, "v1", TRUST)
    folder = shutil.copytree(_version(registry), tmp_path / "served")
    with pytest.raises(Exception, match=r"extra\.pkl"):
        load_folder(folder, TRUST, compile=False)


def test_a_signed_folder_copied_under_another_version_is_refused(
    registry: FileRegistry, model_dir: Path
) -> None:
    registry.register(NAME, model_dir, SIGNER)  # v2, signed as v2
    v1, v2 = _version(registry, "v1"), _version(registry, "v2")
    for name in ("model.joblib", "model-card.json", "signature.json"):
        (v2 / name).write_bytes((v1 / name).read_bytes())  # replay v1 as v2
    with pytest.raises(ModelIntegrityError):
        registry.verify(NAME, "v2", TRUST)


def test_a_version_signed_by_an_untrusted_key_is_refused(tmp_path: Path, model_dir: Path) -> None:
    stranger = Signer(Ed25519PrivateKey.generate())
    registry = open_registry(f"file://{tmp_path / 'other'}")
    registry.register(NAME, model_dir, stranger)
    with pytest.raises(ModelIntegrityError, match=f"key {stranger.key_id}, which is not trusted"):
        registry.verify(NAME, "v1", TRUST)


def test_a_forged_signature_is_refused(registry: FileRegistry) -> None:
    path = _version(registry) / "signature.json"
    document = json.loads(path.read_text())
    document["statement"]["files"]["model-card.json"]["size"] += 1
    path.write_text(json.dumps(document))
    with pytest.raises(ModelIntegrityError, match="does not match its statement"):
        registry.verify(NAME, "v1", TRUST)


def test_rotation_trusts_every_listed_key(tmp_path: Path, model_dir: Path) -> None:
    new = Signer(Ed25519PrivateKey.generate())
    registry = open_registry(f"file://{tmp_path / 'registry'}")
    registry.register(NAME, model_dir, SIGNER)  # v1 under the old key
    registry.register(NAME, model_dir, new)  # v2 under the new one
    trusted = tmp_path / "trusted"
    write_public_key(trusted, SIGNER)
    write_public_key(trusted, new)
    both = trust_from([trusted])
    assert registry.verify(NAME, "v1", both).endswith(f"{SIGNER.key_id})")
    assert registry.verify(NAME, "v2", both).endswith(f"{new.key_id})")
    only_new = trust_from([trusted / f"{new.key_id}.pub"])
    with pytest.raises(ModelIntegrityError, match="not trusted"):
        registry.verify(NAME, "v1", only_new)


def test_a_local_registry_signs_with_its_own_key_and_trusts_it(
    tmp_path: Path, model_dir: Path
) -> None:
    registry = open_registry(f"file://{tmp_path / 'assay' / 'registry'}")
    signer = registry_signer(registry.root)
    registry.register(NAME, model_dir, signer)
    key = tmp_path / "assay" / "keys" / "signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert registry_signer(registry.root).key_id == signer.key_id  # made once, then reused
    trust = model_trust(registry_root=registry.root)
    assert registry.verify(NAME, "v1", trust) == f"ok (signed by {signer.key_id})"
    assert isinstance(trust, ModelTrust) and not trust.allow_unsigned


def test_an_s3_registry_without_a_signing_key_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASSAY_SIGNING_KEY", raising=False)
    with pytest.raises(Exception, match="ASSAY_SIGNING_KEY"):
        registry_signer("s3://assay-models/registry")


def test_models_show_refuses_a_tampered_version_with_one_sentence(
    tmp_path: Path, model_dir: Path
) -> None:
    registry = open_registry(f"file://{tmp_path / 'registry'}")
    registry.register(NAME, model_dir, registry_signer(registry.root))
    _edit_card(registry.path / NAME / "v1", threshold=1.0)  # type: ignore[attr-defined]
    result = runner.invoke(app, ["models", "show", NAME, "v1", "--registry", registry.root])
    assert result.exit_code == 5, result.output
    assert "model-card.json was changed after it was signed" in " ".join(result.output.split())
