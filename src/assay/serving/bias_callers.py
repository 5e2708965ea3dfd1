"""Who asks the bias scorer: callers authenticate with an API key from the caller key file.

The key file (``--caller-keys-file`` / ``ASSAY_SCORER_CALLER_KEYS_FILE``, mounted from a
Kubernetes Secret) is read once at start-up::

    callers:
      newsroom:                       # the caller id: metrics label and quota key
        keys: ["<at least 24 characters>"]
        revoked_keys: ["<an old key>"]  # answered 403 "revoked", never accepted
        daily_budget_usd: 5.0         # optional: else --caller-daily-budget
        max_queued_passages: 64       # optional: else --caller-max-queued

A request presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (REST) or
as ``authorization`` metadata (gRPC). Keys are compared in constant time
(``hmac.compare_digest`` on their SHA-256 digests, every entry compared, no early exit). No key:
401; an unknown key: 401; a revoked key: 403. Caller ids come from the file only, so the metric
labels they become are bounded by it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grpc_interceptor.exceptions import PermissionDenied, Unauthenticated

from assay.errors import ConfigError

ANONYMOUS = "anonymous"
"""The one caller of a scorer started with ``--allow-anonymous`` (every request is theirs)."""
UNAUTHENTICATED = "unauthenticated"
"""The metric label of refused requests that named no known caller."""
CALLER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MIN_KEY_CHARS = 24
MAX_CALLERS = 1000
BEARER = "bearer"


class CallerUnauthenticated(Unauthenticated):
    """No key, or a key nobody holds: 401 over REST, UNAUTHENTICATED over gRPC."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message


class CallerForbidden(PermissionDenied):
    """A revoked key: 403 over REST, PERMISSION_DENIED over gRPC."""

    def __init__(self, message: str, caller: str) -> None:
        super().__init__(message)
        self.reason, self.caller = message, caller


@dataclass(frozen=True)
class Caller:
    """One caller: its id and its own limits (None: the server's default)."""

    id: str
    daily_budget_usd: float | None = None
    max_queued_passages: int | None = None


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    caller: Caller
    revoked: bool


def _digest(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


class CallerKeys:
    """The callers of the key file; :meth:`authenticate` finds who presented a key."""

    def __init__(self, callers: Mapping[str, Caller], entries: list[_Entry]) -> None:
        self.callers = dict(callers)
        self._entries = entries

    @classmethod
    def anonymous(cls, daily_budget_usd: float, max_queued_passages: int) -> CallerKeys:
        """No keys: every request is the one caller ``anonymous``, with its own small quota."""
        caller = Caller(ANONYMOUS, daily_budget_usd, max_queued_passages)
        return cls({ANONYMOUS: caller}, [])

    @property
    def required(self) -> bool:
        """False for a scorer started without a key file: every request is ``anonymous``."""
        return bool(self._entries)

    def authenticate(self, headers: Mapping[str, Any] | None) -> Caller:
        """The caller whose key ``headers`` present (lower-case names, str or bytes values)."""
        if not self.required:
            return self.callers[ANONYMOUS]
        presented = presented_key(headers or {})
        if presented is None:
            raise CallerUnauthenticated(
                "the bias scorer needs an API key: send 'Authorization: Bearer <key>' (or "
                "'X-API-Key: <key>'; gRPC: 'authorization' metadata); ask the operator for one"
            )
        digest = _digest(presented)
        found: _Entry | None = None
        for entry in self._entries:  # every entry, so the time does not depend on the match
            if hmac.compare_digest(digest, entry.digest):
                found = entry
        if found is None:
            raise CallerUnauthenticated("unknown API key")
        if found.revoked:
            raise CallerForbidden(
                f"this API key of caller {found.caller.id!r} was revoked; ask the operator for "
                "a new one",
                found.caller.id,
            )
        return found.caller


def presented_key(headers: Mapping[str, Any]) -> bytes | None:
    """The key in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; None when absent."""
    authorization = _text(headers.get("authorization"))
    if authorization:
        scheme, _, key = authorization.strip().partition(b" ")
        if scheme.lower() == BEARER.encode() and key.strip():
            return key.strip()
        return None
    api_key = _text(headers.get("x-api-key"))
    return api_key.strip() or None if api_key else None


def _text(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass(frozen=True)
class AnonymousAccess:
    """``--allow-anonymous`` and the anonymous caller's own quota."""

    allowed: bool = False
    daily_budget_usd: float = 1.0
    max_queued_passages: int = 16


NEEDS_CALLERS = (
    "the bias scorer spends money on every request, so it needs to know its callers: start it "
    "with --caller-keys-file (ASSAY_SCORER_CALLER_KEYS_FILE; see docs/bias-scorer-auth.md), or "
    "with --allow-anonymous (ASSAY_SCORER_ALLOW_ANONYMOUS=1) for local development only"
)


def read_caller_keys(path: str | None, anonymous: AnonymousAccess | None = None) -> CallerKeys:
    """The key file at ``path`` (read once). Without a path, the one ``anonymous`` caller when
    ``anonymous.allowed``, else :class:`ConfigError` (the server does not start)."""
    anonymous = anonymous or AnonymousAccess()
    if path is not None and anonymous.allowed:
        raise ConfigError(
            "--allow-anonymous and --caller-keys-file exclude each other: with a key file "
            "every request needs a key"
        )
    if path is None:
        if not anonymous.allowed:
            raise ConfigError(NEEDS_CALLERS)
        return CallerKeys.anonymous(anonymous.daily_budget_usd, anonymous.max_queued_passages)
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--caller-keys-file {path}: cannot read it ({exc})") from None
    callers_doc = document.get("callers") if isinstance(document, dict) else None
    if not isinstance(callers_doc, dict) or not callers_doc:
        raise ConfigError(f"--caller-keys-file {path}: needs a non-empty 'callers' mapping")
    if len(callers_doc) > MAX_CALLERS:
        raise ConfigError(f"--caller-keys-file {path}: at most {MAX_CALLERS} callers")
    callers: dict[str, Caller] = {}
    entries: list[_Entry] = []
    seen: set[bytes] = set()
    for caller_id, spec in callers_doc.items():
        where = f"--caller-keys-file {path}: caller {caller_id!r}"
        caller = _caller(str(caller_id), spec, where)
        callers[caller.id] = caller
        for revoked, key in _keys(spec, where):
            digest = _digest(key)
            if digest in seen:
                raise ConfigError(f"{where}: a key appears twice in the file")
            seen.add(digest)
            entries.append(_Entry(digest, caller, revoked))
    if not any(not entry.revoked for entry in entries):
        raise ConfigError(f"--caller-keys-file {path}: no active key")
    return CallerKeys(callers, entries)


def _caller(caller_id: str, spec: Any, where: str) -> Caller:
    if not CALLER_ID.fullmatch(caller_id) or caller_id in (ANONYMOUS, UNAUTHENTICATED):
        raise ConfigError(f"{where}: ids are lower-case letters, digits and '-' (max 63)")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: needs a mapping with 'keys'")
    unknown = set(spec) - {"keys", "revoked_keys", "daily_budget_usd", "max_queued_passages"}
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    budget, queued = spec.get("daily_budget_usd"), spec.get("max_queued_passages")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
        raise ConfigError(f"{where}: daily_budget_usd must be a number of USD")
    if budget is not None and budget < 0:
        raise ConfigError(f"{where}: daily_budget_usd must be at least 0")
    if queued is not None and (type(queued) is not int or queued < 1):
        raise ConfigError(f"{where}: max_queued_passages must be a whole number of at least 1")
    return Caller(caller_id, None if budget is None else float(budget), queued)


def _keys(spec: dict[str, Any], where: str) -> list[tuple[bool, str]]:
    found: list[tuple[bool, str]] = []
    for field, revoked in (("keys", False), ("revoked_keys", True)):
        keys = spec.get(field, [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"{where}: {field} must be a list of strings")
        for key in keys:
            if len(key) < MIN_KEY_CHARS or key != key.strip() or " " in key:
                raise ConfigError(
                    f"{where}: every key needs at least {MIN_KEY_CHARS} characters, no spaces"
                )
            found.append((revoked, key))
    return found
