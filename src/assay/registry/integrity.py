"""Integrity of a registered model file, checked before anything unpickles it.

Registration records ``model_sha256`` (hex SHA-256) and ``model_size`` (bytes) of
``model.joblib`` in the version's card. Readers (the classifier server's loader, ``assay models
show``, the deploy step) call :func:`verify_model_file` first and refuse a mismatch.

A card without a digest is either a version registered before digests were recorded (it has
``registered_at``) or a build folder that was never registered. Readers call this after the
version's signature held (:mod:`assay.registry.signing`), or for an unsigned folder they were
explicitly told to load, and pass ``allow_unverified`` accordingly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assay.errors import RegistryError

MODEL_SHA256 = "model_sha256"
MODEL_SIZE = "model_size"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class ModelIntegrityError(RegistryError):
    """The model file does not match the digest its card records (or the card records none).

    Exit code 5, apart from 3 (not found, bad name): a tampered model is not a typo."""

    exit_code = 5


def file_digest(model: Path | bytes) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file or of bytes in memory."""
    if isinstance(model, bytes):
        return hashlib.sha256(model).hexdigest(), len(model)
    digest, size = hashlib.sha256(), 0
    with Path(model).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def integrity_fields(model: Path | bytes) -> dict[str, Any]:
    """The card fields recording ``model``'s digest and size."""
    sha256, size = file_digest(model)
    return {MODEL_SHA256: sha256, MODEL_SIZE: size}


def verify_model_file(
    model: Path | bytes,
    card: Mapping[str, Any],
    where: str,
    allow_unverified: bool,
) -> str:
    """``"ok"`` when ``model`` matches the card's digest and size; else ModelIntegrityError.

    A card with no digest: see the module docstring; returns ``"unverified (...)"`` when allowed.
    """
    expected = card.get(MODEL_SHA256)
    if expected is None and MODEL_SIZE not in card:
        return _unverified(card, where, allow_unverified)
    expected_size = card.get(MODEL_SIZE)
    if not isinstance(expected, str) or not _SHA256_HEX.fullmatch(expected):
        raise ModelIntegrityError(
            f"{where}: the card's {MODEL_SHA256} is not a hex SHA-256 ({expected!r}); "
            "refusing to load the model."
        )
    if not isinstance(expected_size, int) or isinstance(expected_size, bool):
        raise ModelIntegrityError(
            f"{where}: the card's {MODEL_SIZE} is not a byte count ({expected_size!r}); "
            "refusing to load the model."
        )
    actual, size = file_digest(model)
    if size != expected_size or actual != expected:
        raise ModelIntegrityError(
            f"{where}: model.joblib does not match its card ({MODEL_SHA256} {expected}, "
            f"{expected_size} bytes expected; found {actual}, {size} bytes); refusing to load "
            "a model file that was changed after registration."
        )
    return "ok"


def _unverified(card: Mapping[str, Any], where: str, allow: bool) -> str:
    if "registered_at" not in card:
        return "unverified (never registered: the card records no digest)"
    if not allow:
        raise ModelIntegrityError(
            f"{where}: the card records no {MODEL_SHA256} (registered before digests were "
            "recorded); re-register the model."
        )
    return "unverified (a legacy card without a digest)"
