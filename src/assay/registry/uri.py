"""Parsing of registry root URIs and model URIs.

A registry root is ``file:///abs/path``, a plain filesystem path, or ``s3://bucket/prefix``.
A model URI is ``<root>/<name>/<ref>`` where ``ref`` is a version (``v3``) or an alias
(``latest``, ``production``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assay.errors import RegistryError

# Matched whole (``fullmatch``): with ``match`` and ``$``, "prod\n" would pass as "prod".
VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class RegistryLocation:
    """Where a registry lives: a local folder or an S3 bucket + key prefix."""

    scheme: Literal["file", "s3"]
    path: Path | None = None  # file
    bucket: str = ""  # s3
    prefix: str = ""  # s3, without leading/trailing slashes

    @property
    def root(self) -> str:
        if self.scheme == "file":
            return "file://" + str(self.path)
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_registry_uri(uri: str) -> RegistryLocation:
    """Turn a registry root URI (or plain path) into a :class:`RegistryLocation`."""
    text = uri.strip()
    if not text:
        raise RegistryError("The registry URI is empty; use file:///path, a path or s3://bucket.")
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise RegistryError(f"Registry URI {uri!r} names no bucket; use s3://bucket/prefix.")
        return RegistryLocation("s3", bucket=bucket, prefix=prefix.strip("/"))
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise RegistryError(
            f"Registry URI {uri!r} has unsupported scheme {scheme!r}; use file:// or s3://."
        )
    return RegistryLocation("file", path=Path(text).expanduser().absolute())


def parse_model_uri(uri: str) -> tuple[str, str, str]:
    """Split ``<root>/<name>/<ref>`` into ``(root, name, ref)``.

    >>> parse_model_uri("s3://assay-models/registry/wdbc-classifier/v3")
    ('s3://assay-models/registry', 'wdbc-classifier', 'v3')
    """
    parts = uri.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or parts[0].endswith(":/") or parts[0].endswith(":"):
        raise RegistryError(
            f"Model URI {uri!r} is not of the form <registry root>/<model name>/<version or alias>."
        )
    root, name, ref = parts
    check_name(name, "model name")
    check_name(ref, "version or alias")
    return root, name, ref


def is_name(value: object) -> bool:
    """True for a model name, alias or version: one path segment of safe characters."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def check_name(value: str, what: str) -> str:
    """Model names, aliases and versions are single path segments of safe characters."""
    if not is_name(value):
        raise RegistryError(
            f"Invalid {what} {value!r}: use letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)."
        )
    return value


def version_number(version: str) -> int | None:
    """``"v12"`` -> 12; anything that is not a version -> None."""
    match = VERSION_PATTERN.fullmatch(version)
    return int(match.group(1)) if match else None
