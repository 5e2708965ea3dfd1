"""The durable ratings store: append-only JSON lines, resumable, without duplicates.

Each line is one row of the ratings table (``RATINGS_COLUMNS``) plus ``key`` (passage, rater,
model, prompt version). Reading keeps the LAST row per key, so a failed rating retried later is
superseded, never duplicated, except that a finished row (a rating or a final failure) is never
superseded by an unfinished one (``supersedes``: a slower concurrent or stale run's timeout
cannot undo a rating). Two backends, chosen by :func:`open_ratings_store`, share that rule:

- a local folder (``RatingsStore``): one ``ratings.jsonl``, fsync'd per append. A killed run
  loses at most the line being written; a torn last line is ignored on read and cut off before
  the next append, under the same lock as the appends (so a writer never cuts another writer's
  line in progress).
- ``s3://bucket/prefix`` (``S3RatingsStore``, for pipeline pods whose disk dies with them): each
  append is one new immutable object ``<prefix>/segments/<time>-<writer>-<n>.jsonl``. An object
  appears whole or not at all, so a crash loses at most the batch in flight, and writers never
  touch each other's objects, so concurrent runs cannot corrupt the store. Reading is the union
  of the segments in name (time) order.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd

from assay.bias.ratings import RATINGS_COLUMNS
from assay.errors import DataValidationError
from assay.storage.s3 import ObjectStore, S3Location, StorageError, is_s3_uri, parse_s3_uri

KEY = "key"
FILE_NAME = "ratings.jsonl"
SEGMENTS = "segments"
SCAN_BLOCK = 1 << 16
"""Bytes read at a time while looking back for the end of the last finished line."""
FINAL_ERROR_REASONS = ("parse_error", "bad_request")
"""A failed rating whose error starts with one of these is final (the model answered, badly, or
the request itself is invalid); other failures (timeouts, outages) are retried on resume."""


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _line(row: Mapping[str, Any]) -> bytes:
    missing = [c for c in ("passage_id", "rater", KEY) if row.get(c) in (None, "")]
    if missing:
        raise DataValidationError(f"a rating row lacks {', '.join(missing)}")
    record = {c: _clean(row.get(c)) for c in RATINGS_COLUMNS}
    record[KEY] = row[KEY]
    return (json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n").encode()


def _parse_lines(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """The complete JSON lines, stopping at a torn (newline-less) last one."""
    out: list[dict[str, Any]] = []
    for raw in lines:
        if not raw.endswith(b"\n"):
            break
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return out


class BaseRatingsStore:
    """What every backend derives from its ``rows()``; a backend adds ``append`` and
    ``rows``."""

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        raise NotImplementedError

    def rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def latest(self) -> dict[str, dict[str, Any]]:
        """The row that stands for each key: the last one written, except that an unfinished
        row never replaces a finished one (a concurrent or stale run's timeout cannot undo a
        rating, which would then be paid for again)."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.rows():
            before = latest.get(row[KEY])
            if before is None or supersedes(row, before):
                latest[row[KEY]] = row
        return latest

    def finished_keys(self) -> set[str]:
        """Keys a resumed run must not call again: valid ratings and final failures."""
        return {key for key, row in self.latest().items() if is_finished(row)}

    def spent_usd(self, keys: Collection[str]) -> float:
        """What the rows of ``keys`` cost, every row counted (a superseded failure was paid
        for too): a resumed study's spend so far."""
        wanted = set(keys)
        costs = (row.get("cost") or 0.0 for row in self.rows() if row[KEY] in wanted)
        return math.fsum(float(cost) for cost in costs)

    def to_frame(self, *, with_key: bool = False) -> pd.DataFrame:
        """One row per key in ``RATINGS_COLUMNS`` order (plus ``key`` if asked), rows in key
        order: the table, and every fit and check on it, must not depend on which rating of a
        concurrent fan-out finished first."""
        columns = [*RATINGS_COLUMNS, KEY] if with_key else list(RATINGS_COLUMNS)
        latest = [row for _, row in sorted(self.latest().items())]
        return pd.DataFrame(latest, columns=columns)

    def __len__(self) -> int:
        return len(self.latest())

    def close(self) -> None:
        """Release what the backend holds open (nothing by default)."""

    def __enter__(self) -> BaseRatingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ratings_store(location: str | Path) -> BaseRatingsStore:
    """The store at ``location``: ``s3://bucket/prefix``, a folder or a ``.jsonl`` file."""
    if is_s3_uri(location):
        store = S3RatingsStore(str(location))
        store.check_bucket()
        return store
    return RatingsStore(location)


class RatingsStore(BaseRatingsStore):
    """``RatingsStore(path)``: ``path`` is a directory (holding ratings.jsonl) or a .jsonl file."""

    _line = staticmethod(_line)  # the line format, for tests that forge torn writes

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.file = path if path.suffix == ".jsonl" else path / FILE_NAME
        self._handle: IO[bytes] | None = None

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows durably (flush + fsync before returning); returns how many."""
        lines = [_line(row) for row in rows]
        if not lines:
            return 0
        handle = self._open()
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            self._cut_torn_tail()
            handle.write(b"".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return len(lines)

    def rows(self) -> list[dict[str, Any]]:
        """Every complete line, in write order (a torn last line is skipped)."""
        if not self.file.exists():
            return []
        with self.file.open("rb") as fh:
            return _parse_lines(fh)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RatingsStore:
        return self

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.file.open("ab")
        return self._handle

    def _cut_torn_tail(self) -> None:
        """Cut a torn last line (a writer died mid-line). Call with the lock held: every line
        is written whole under it, so a line without its newline then is really torn."""
        if not self.file.exists() or self.file.stat().st_size == 0:
            return
        with self.file.open("r+b") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.truncate(_end_of_last_line(fh))


def _end_of_last_line(fh: IO[bytes]) -> int:
    """The offset just past the file's last newline (0 if it has none), scanning back block by
    block: a torn line may be of any size, and every byte before its start is a finished row."""
    end = fh.seek(0, os.SEEK_END)
    while end > 0:
        start = max(0, end - SCAN_BLOCK)
        fh.seek(start)
        newline = fh.read(end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def is_finished(row: Mapping[str, Any]) -> bool:
    """A valid rating or a final failure: a resumed run does not ask for it again."""
    error = row.get("error") or ""
    return not error or str(error).startswith(FINAL_ERROR_REASONS)


def supersedes(later: Mapping[str, Any], earlier: Mapping[str, Any]) -> bool:
    """Whether ``later`` (written after ``earlier``, same key) stands for the key instead: the
    last row wins unless it is unfinished and ``earlier`` is finished."""
    return is_finished(later) or not is_finished(earlier)


class S3RatingsStore(BaseRatingsStore):
    """``S3RatingsStore("s3://bucket/prefix")``: append-only segment objects (module doc)."""

    def __init__(self, uri: str, objects: ObjectStore | None = None) -> None:
        self.root = parse_s3_uri(uri)
        self.segments = self.root.child(SEGMENTS)
        self._objects = objects
        self._writer = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        self._written = 0
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def check_bucket(self) -> None:
        """Fail before any rating is paid for when the store's bucket does not exist (the
        pipeline's MinIO user may not create buckets)."""
        if not self.objects.bucket_exists(self.root.bucket):
            raise StorageError(
                f"ratings store {self.root.uri}: bucket {self.root.bucket!r} does not exist."
            )

    @property
    def objects(self) -> ObjectStore:
        if self._objects is None:
            self._objects = ObjectStore()
        return self._objects

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows as one new segment object; returns how many."""
        lines = [_line(row) for row in rows]
        if not lines:
            return 0
        self._written += 1
        name = f"{time.time_ns():020d}-{self._writer}-{self._written:06d}.jsonl"
        data = b"".join(lines)
        self.objects.put_bytes(self.segments.child(name), data, "application/x-ndjson")
        self._cache[self.segments.child(name).key] = _parse_lines(data.splitlines(keepends=True))
        return len(lines)

    def rows(self) -> list[dict[str, Any]]:
        """Every row of every segment, in segment-name order (segments are immutable, so each
        is downloaded once per store object)."""
        out: list[dict[str, Any]] = []
        for key in self.objects.list_keys(S3Location(self.root.bucket, self.segments.key + "/")):
            if key not in self._cache:
                data = self.objects.get_bytes(S3Location(self.root.bucket, key))
                self._cache[key] = _parse_lines(data.splitlines(keepends=True))
            out.extend(self._cache[key])
        return out
