"""Signed model versions: what a register step signed is exactly what a reader accepts.

A version folder holds ``model.joblib``, ``model-card.json`` and ``signature.json``. The
signature covers a statement naming the model, the version and every other file of the folder
with its SHA-256 and size, so a changed card, a swapped pickle, an added or a missing file, or a
signed folder copied under another version number all fail. It is an Ed25519 signature
(``cryptography``) by the register step's private key, which only that step holds; readers
(servers, ``assay models show``, the deploy step) verify against a keyring of trusted public
keys (several, for rotation), never against anything stored beside the files.

Key files are PEM: PKCS#8 private keys, SubjectPublicKeyInfo public keys. A key's id is the
first 16 hex digits of the SHA-256 of its raw public bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from assay.errors import RegistryError
from assay.registry.integrity import ModelIntegrityError

SIGNATURE_FILE = "signature.json"
FORMAT = "assay-model-signature/1"
PRIVATE_KEY_NAME = "signing-key.pem"
PUBLIC_KEY_NAME = "signing-key.pub"


class SignatureError(ModelIntegrityError):
    """A version folder is unsigned, signed by an untrusted key, or differs from what was signed."""


def key_id(public_key: Any) -> str:

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The register step's private key."""

    private_key: Any = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    def sign(self, name: str, version: str, files: Mapping[str, bytes]) -> bytes:
        """``signature.json`` for a version made of ``files`` (name -> content)."""
        statement = _statement(name, version, files)
        signature = self.private_key.sign(_canonical(statement))
        document = {
            "format": FORMAT,
            "key_id": self.key_id,
            "signature": base64.b64encode(signature).decode(),
            "statement": statement,
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class ModelTrust:
    """What a reader accepts: versions signed by one of ``keys`` (id -> public key); unsigned
    folders only when ``allow_unsigned`` (an explicit flag for local experiments)."""

    keys: Mapping[str, Any] = field(default_factory=dict, repr=False)
    allow_unsigned: bool = False
    sources: tuple[str, ...] = ()

    def verify(self, files: Mapping[str, bytes], where: str, name: str | None = None) -> str:
        """Check a version folder's files (name -> content, ``signature.json`` included):
        ``"signed by <key id>"``, ``"unsigned (allowed ...)"``, or SignatureError."""
        document = files.get(SIGNATURE_FILE)
        if document is None:
            if self.allow_unsigned:
                return "unsigned (allowed by --allow-unsigned-models)"
            raise SignatureError(
                f"{where}: no {SIGNATURE_FILE}: the version is unsigned, so it is refused "
                "(register it with a signing key, or pass --allow-unsigned-models / "
                "ASSAY_ALLOW_UNSIGNED_MODELS=true for a local experiment)."
            )
        statement, signer_id = self._checked_signature(document, where)
        signed_files = statement["files"]
        present = {f for f in files if f != SIGNATURE_FILE}
        if present != set(signed_files):
            added, missing = (
                sorted(present - set(signed_files)),
                sorted(set(signed_files) - present),
            )
            raise SignatureError(
                f"{where}: the folder differs from what was signed (added: {added or 'none'}, "
                f"missing: {missing or 'none'}); refusing it."
            )
        for filename, content in files.items():
            found = _digest(content)
            if filename != SIGNATURE_FILE and signed_files[filename] != found:
                signed = signed_files[filename]
                raise SignatureError(
                    f"{where}: {filename} was changed after it was signed (signed: sha256 "
                    f"{signed.get('sha256')}, {signed.get('size')} bytes; found: sha256 "
                    f"{found['sha256']}, {found['size']} bytes); refusing the version."
                )
        card_version = _card_version(files)
        if card_version is not None and card_version != statement["version"]:
            raise SignatureError(
                f"{where}: the card says version {card_version!r} but {statement['version']!r} "
                "was signed; refusing it."
            )
        if name is not None and statement["model"] != name:
            raise SignatureError(
                f"{where}: signed for model {statement['model']!r}, not {name!r}; refusing it."
            )
        return f"signed by {signer_id}"

    def verify_version(
        self, files: Mapping[str, bytes], where: str, name: str, version: str
    ) -> str:
        """:meth:`verify`, and the signed name and version must be where the folder lives."""
        status = self.verify(files, where, name)
        if status.startswith("signed"):
            signed = json.loads(files[SIGNATURE_FILE])["statement"]["version"]
            if signed != version:
                raise SignatureError(
                    f"{where}: signed as version {signed!r}, found as {version!r} (a signed "
                    "folder copied under another version); refusing it."
                )
        return status

    def _checked_signature(self, document: bytes, where: str) -> tuple[dict[str, Any], str]:

        try:
            parsed = json.loads(document)
            statement = parsed["statement"]
            signer_id = str(parsed["key_id"])
            signature = base64.b64decode(parsed["signature"], validate=True)
            if parsed["format"] != FORMAT or not isinstance(statement.get("files"), dict):
                raise ValueError("unknown format")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SignatureError(f"{where}: {SIGNATURE_FILE} is malformed ({exc}).") from None
        public_key = self.keys.get(signer_id)
        if public_key is None:
            trusted = ", ".join(sorted(self.keys)) or "none"
            raise SignatureError(
                f"{where}: signed by key {signer_id}, which is not trusted (trusted: {trusted}; "
                "set ASSAY_TRUSTED_KEYS / --trusted-keys)."
            )
        try:
            public_key.verify(signature, _canonical(statement))
        except InvalidSignature:
            raise SignatureError(
                f"{where}: the signature does not match its statement; refusing the version."
            ) from None
        return statement, signer_id


def trust_from(paths: Iterable[str | Path], allow_unsigned: bool = False) -> ModelTrust:
    """A keyring from public key files and folders of them (their ``*.pub`` files)."""
    keys: dict[str, Any] = {}
    sources = []
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".pub" and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise RegistryError(f"Trusted key {path} does not exist.")
        for file in files:
            public_key = load_public_key(file)
            keys[key_id(public_key)] = public_key
        sources.append(str(path))
    return ModelTrust(keys=keys, allow_unsigned=allow_unsigned, sources=tuple(sources))


def load_public_key(path: Path) -> Any:

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise RegistryError(f"{path} is not a PEM public key: {exc}.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise RegistryError(f"{path} is not an Ed25519 public key.")
    return key


def load_signer(path: Path) -> Signer:

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, OSError, TypeError) as exc:
        raise RegistryError(f"{path} is not an unencrypted PEM private key: {exc}.") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RegistryError(f"{path} is not an Ed25519 private key.")
    return Signer(key)


def generate_key_pair(folder: Path) -> tuple[Path, Path]:
    """Write a new ``signing-key.pem`` (mode 0600) and ``signing-key.pub`` into ``folder``."""

    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / PRIVATE_KEY_NAME, folder / PUBLIC_KEY_NAME
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    staging = folder / f".{PRIVATE_KEY_NAME}.{os.getpid()}"
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    try:
        os.link(staging, private)  # complete or absent, never half written; fails if it exists
    finally:
        staging.unlink()
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def local_signer(keys_dir: Path) -> Signer:
    """The local registry's key (``<keys_dir>/signing-key.pem``), made on first use."""
    private = keys_dir / PRIVATE_KEY_NAME
    if not private.exists():
        with contextlib.suppress(FileExistsError):  # another registration made it first
            generate_key_pair(keys_dir)
    return load_signer(private)


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every entry of a version folder by name (a sub-folder is listed, with empty content,
    so that it fails the comparison with what was signed)."""
    return {p.name: (p.read_bytes() if p.is_file() else b"") for p in sorted(folder.iterdir())}


def _statement(name: str, version: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "model": name,
        "version": version,
        "files": {f: _digest(content) for f, content in sorted(files.items())},
    }


def _digest(content: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


def _canonical(statement: Mapping[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def _card_version(files: Mapping[str, bytes]) -> str | None:
    try:
        card = json.loads(files.get("model-card.json", b"{}"))
    except ValueError:
        return None
    version = card.get("version") if isinstance(card, dict) else None
    return str(version) if version is not None else None
