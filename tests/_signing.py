"""A model-signing key for the tests (made in memory once per process) and the keyrings readers
use with it: TRUST accepts what SIGNER signed, UNSIGNED_OK is the local-experiment flag."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from assay.registry.signing import ModelTrust, Signer

SIGNER = Signer(Ed25519PrivateKey.generate())
TRUST = ModelTrust(keys={SIGNER.key_id: SIGNER.private_key.public_key()})
UNSIGNED_OK = ModelTrust(allow_unsigned=True)


def write_public_key(folder: Path, signer: Signer = SIGNER) -> Path:
    """``folder/<key id>.pub``: a trusted-keys folder, as a ConfigMap would mount it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{signer.key_id}.pub"
    path.write_bytes(
        signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def write_private_key(path: Path, signer: Signer = SIGNER) -> Path:
    """The signer's PEM private key, as the register step's Secret would mount it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path
