"""The registry logic shared by every backend.

A backend stores opaque files under relative keys (``<name>/<version>/<file>``,
``<name>/aliases/<alias>.json``); this class owns versions, aliases and error messages.
Layout and rules (docs/design.md):

* ``<root>/<name>/<version>/{model.joblib, model-card.json}``; versions ``v1, v2, ...`` are
  immutable; a version is complete only once its ``model-card.json`` exists (written last).
  The card records ``model_sha256`` and ``model_size`` of ``model.joblib`` (``verify``).
* aliases are small JSON pointers ``<root>/<name>/aliases/<alias>.json`` =
  ``{"version": "v3", "updated_at": "..."}``; ``register`` moves ``latest`` forward only, by
  compare-and-swap, so a slower concurrent registration never moves it back.
* a backend claims a version number atomically (a conditional write on S3, a rename on files):
  two concurrent registrations always get two versions.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.errors import RegistryError
from assay.registry.integrity import ModelIntegrityError, integrity_fields, verify_model_file
from assay.registry.signing import SIGNATURE_FILE, ModelTrust, Signer
from assay.registry.uri import check_name, is_name, version_number

MODEL_FILE = "model.joblib"
CARD_FILE = "model-card.json"
VERSION_FILES = (MODEL_FILE, CARD_FILE)
STORED_FILES = (MODEL_FILE, SIGNATURE_FILE, CARD_FILE)  # the order they are written: card last
ALIASES_DIR = "aliases"
CLAIMS_DIR = ".claims"  # beside the versions: a version folder holds only what is served
LATEST = "latest"
PRODUCTION = "production"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Registry(ABC):
    """A model registry rooted at ``root`` (``file://...`` or ``s3://bucket/prefix``)."""

    root: str

    # -- backend primitives -------------------------------------------------------------
    @abstractmethod
    def _list_keys(self, prefix: str) -> list[str]:
        """Every stored key under ``prefix`` (relative to the root), recursively."""

    @abstractmethod
    def _read_bytes(self, key: str) -> bytes | None:
        """The content of ``key``, or None when it does not exist."""

    @abstractmethod
    def _write_small(self, key: str, data: bytes) -> None:
        """Write (or replace) a small object atomically; used for alias pointers only."""

    @abstractmethod
    def _swap_small(self, key: str, expected: bytes | None, data: bytes) -> bool:
        """Replace ``key`` with ``data`` only if it still holds ``expected`` (None: absent)."""

    @abstractmethod
    def _publish_version(self, name: str, version: str, files: dict[str, bytes]) -> bool:
        """Claim ``version`` atomically and store ``files`` (name -> content; the card last).
        Return False if another writer holds ``version``."""

    @abstractmethod
    def _fetch(self, key: str, dest: Path) -> None:
        """Copy the object ``key`` to the local file ``dest``."""

    # -- public API ---------------------------------------------------------------------
    def models(self) -> list[str]:
        """Names of the models that have at least one complete version, sorted."""
        names = {
            parts[0]
            for parts in (key.split("/") for key in self._list_keys(""))
            if len(parts) == 3
            and parts[2] == CARD_FILE
            and version_number(parts[1])
            and is_name(parts[0])
        }
        return sorted(names)

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name``, oldest first (``[]`` for an unknown model)."""
        check_name(name, "model name")
        found = [
            parts[1]
            for parts in (key.split("/") for key in self._list_keys(name + "/"))
            if len(parts) == 3 and parts[2] == CARD_FILE and version_number(parts[1])
        ]
        return sorted(set(found), key=lambda v: version_number(v) or 0)

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` for ``name``."""
        check_name(name, "model name")
        result: dict[str, str] = {}
        for key in self._list_keys(f"{name}/{ALIASES_DIR}/"):
            filename = key.rsplit("/", 1)[-1]
            alias = filename[: -len(".json")]
            if filename.endswith(".json") and is_name(alias):  # skip files not written by us
                pointer = self._read_alias(name, alias)
                if pointer is not None:
                    result[alias] = pointer
        return dict(sorted(result.items()))

    def resolve(self, name: str, ref: str = LATEST) -> str:
        """Turn a version or an alias into an existing version, or raise RegistryError."""
        check_name(name, "model name")
        check_name(ref, "version or alias")
        known = self.versions(name)
        if not known:
            raise RegistryError(self._unknown_model_message(name))
        if version_number(ref):
            if ref not in known:
                raise RegistryError(
                    f"Model {name!r} has no version {ref!r} in {self.root} "
                    f"(versions: {', '.join(known)})."
                )
            return ref
        version = self._read_alias(name, ref)
        if version is None:
            aliases = ", ".join(self.aliases(name)) or "none"
            raise RegistryError(
                f"Model {name!r} has no alias {ref!r} in {self.root} (aliases: {aliases})."
            )
        if version not in known:
            raise RegistryError(
                f"Alias {ref!r} of model {name!r} points to {version!r}, which does not exist."
            )
        return version

    def card(self, name: str, ref: str = LATEST) -> dict[str, Any]:
        """The model card of a version (with ``version`` and ``registered_at``)."""
        version = self.resolve(name, ref)
        data = self._read_bytes(f"{name}/{version}/{CARD_FILE}")
        if data is None:
            raise RegistryError(f"Model {name!r} version {version} has no {CARD_FILE}.")
        card: dict[str, Any] = json.loads(data)
        return card

    def verify(self, name: str, ref: str, trust: ModelTrust) -> str:
        """Check a version against ``trust`` (its signature covers every file of the folder)
        and its model file against the card: ``"ok (signed by ...)"``, or ModelIntegrityError."""
        version = self.resolve(name, ref)
        where = f"{self.root.rstrip('/')}/{name}/{version}"
        stored = {key.split("/", 2)[2] for key in self._list_keys(f"{name}/{version}/")}
        extras = sorted(stored - set(STORED_FILES))
        if extras:
            raise ModelIntegrityError(
                f"{where}: holds {', '.join(extras)} beside {', '.join(STORED_FILES)}, "
                "which registration never writes; refusing the version."
            )
        files = {
            f: data
            for f in sorted(stored)
            if (data := self._read_bytes(f"{name}/{version}/{f}")) is not None
        }
        if MODEL_FILE not in files or CARD_FILE not in files:
            raise RegistryError(f"{where}: {MODEL_FILE} or {CARD_FILE} is missing.")
        signed = trust.verify_version(files, where, name, version)
        card = json.loads(files[CARD_FILE])
        verify_model_file(files[MODEL_FILE], card, where, allow_unverified=True)
        return f"ok ({signed})"

    def download(self, name: str, ref: str, dest: Path) -> Path:
        """Copy a version's files (model, card and, when signed, signature) into ``dest``."""
        version = self.resolve(name, ref)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        stored = {key.split("/", 2)[2] for key in self._list_keys(f"{name}/{version}/")}
        for filename in STORED_FILES:
            if filename in stored or filename in VERSION_FILES:  # missing model/card: an error
                self._fetch(f"{name}/{version}/{filename}", dest / filename)
        return dest

    def uri(self, name: str, ref: str = LATEST) -> str:
        """The URI of a version folder, e.g. ``s3://assay-models/registry/wdbc-classifier/v3``."""
        return f"{self.root.rstrip('/')}/{name}/{self.resolve(name, ref)}"

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at an existing ``version`` of ``name``."""
        check_name(alias, "alias")
        if version_number(alias):
            raise RegistryError(f"Alias {alias!r} looks like a version; choose another name.")
        if alias == ALIASES_DIR:
            raise RegistryError(f"{ALIASES_DIR!r} is reserved and cannot be an alias.")
        if not version_number(version):
            raise RegistryError(f"{version!r} is not a version (expected v1, v2, ...).")
        self.resolve(name, version)  # raises for an unknown model or version
        pointer = {"version": version, "updated_at": utc_now()}
        self._write_small(f"{name}/{ALIASES_DIR}/{alias}.json", _json_bytes(pointer))

    def register(self, name: str, model_dir: Path, signer: Signer | None = None) -> str:
        """Store ``model_dir``'s model as the next immutable version, signed by ``signer``
        (None: unsigned, which readers refuse unless told otherwise); move ``latest`` to it."""
        check_name(name, "model name")
        model_dir = Path(model_dir)
        missing = [f for f in VERSION_FILES if not (model_dir / f).is_file()]
        if missing:
            raise RegistryError(
                f"Cannot register {model_dir}: missing {', '.join(missing)} "
                f"(a model folder holds {' and '.join(VERSION_FILES)})."
            )
        try:
            card = json.loads((model_dir / CARD_FILE).read_text())
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{model_dir / CARD_FILE} is not valid JSON: {exc}.") from exc
        if not isinstance(card, dict):
            raise RegistryError(f"{model_dir / CARD_FILE} is not a JSON object.")
        model = (model_dir / MODEL_FILE).read_bytes()
        card.update(integrity_fields(model))
        for _attempt in range(100):
            version = f"v{self._next_number(name)}"
            card.update(version=version, registered_at=utc_now())
            files = {MODEL_FILE: model, CARD_FILE: _json_bytes(card)}
            if signer is not None:
                files[SIGNATURE_FILE] = signer.sign(name, version, files)
            if self._publish_version(name, version, files):
                self._advance_alias(name, LATEST, version)
                return version
        raise RegistryError(
            f"Could not claim a new version of {name!r}: too many concurrent writers."
        )

    # -- helpers ------------------------------------------------------------------------
    def _advance_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` unless it already points at a later one."""
        key = f"{name}/{ALIASES_DIR}/{alias}.json"
        wanted = version_number(version) or 0
        for _attempt in range(100):
            current = self._read_bytes(key)
            pointed = self._read_alias(name, alias) if current is not None else None
            if pointed is not None and (version_number(pointed) or 0) >= wanted:
                return
            pointer = _json_bytes({"version": version, "updated_at": utc_now()})
            if self._swap_small(key, current, pointer):
                return
        raise RegistryError(f"Could not move alias {alias!r} of {name!r}: too many writers.")

    def _next_number(self, name: str) -> int:
        """One more than any version seen (complete, incomplete or only claimed), so nothing
        is overwritten."""
        numbers = [
            version_number(parts[2] if parts[1] == CLAIMS_DIR else parts[1]) or 0
            for parts in (key.split("/") for key in self._list_keys(name + "/"))
            if len(parts) >= 3
        ]
        return max(numbers, default=0) + 1

    def _read_alias(self, name: str, alias: str) -> str | None:
        data = self._read_bytes(f"{name}/{ALIASES_DIR}/{alias}.json")
        if data is None:
            return None
        try:
            version = json.loads(data)["version"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RegistryError(f"Alias {alias!r} of model {name!r} is corrupt: {exc}.") from exc
        return str(version)

    def _unknown_model_message(self, name: str) -> str:
        models = self.models()
        listed = "models: " + ", ".join(models) if models else "the registry is empty"
        return f"No model named {name!r} in registry {self.root} ({listed})."

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
