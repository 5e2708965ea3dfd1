"""The durable ratings store: append-only JSON lines, fsync'd, resumable, without duplicates.

Each line is one row of the ratings table (``RATINGS_COLUMNS``) plus ``key`` (passage, rater,
model, prompt version). Rows are written as they complete, so a killed run loses at most the
line being written; a torn last line is ignored on read and cut off before the next append,
under the same lock as the appends (so a writer never cuts another writer's line in progress).
Reading keeps the LAST row per key, so a failed rating retried later is superseded, never
duplicated.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd

from assay.bias.ratings import RATINGS_COLUMNS
from assay.errors import DataValidationError

KEY = "key"
FILE_NAME = "ratings.jsonl"
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


class RatingsStore:
    """``RatingsStore(path)``: ``path`` is a directory (holding ratings.jsonl) or a .jsonl file."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.file = path if path.suffix == ".jsonl" else path / FILE_NAME
        self._handle: IO[bytes] | None = None

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows durably (flush + fsync before returning); returns how many."""
        lines = [self._line(row) for row in rows]
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
        out: list[dict[str, Any]] = []
        with self.file.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    continue
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last row written for each key."""
        return {row[KEY]: row for row in self.rows()}

    def finished_keys(self) -> set[str]:
        """Keys a resumed run must not call again: valid ratings and final failures."""
        return {key for key, row in self.latest().items() if is_finished(row)}

    def to_frame(self, *, with_key: bool = False) -> pd.DataFrame:
        """One row per key in ``RATINGS_COLUMNS`` order (plus ``key`` if asked)."""
        columns = [*RATINGS_COLUMNS, KEY] if with_key else list(RATINGS_COLUMNS)
        latest = list(self.latest().values())
        return pd.DataFrame(latest, columns=columns)

    def __len__(self) -> int:
        return len(self.latest())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RatingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            data_end = fh.seek(0, os.SEEK_END)
            block = min(data_end, 1 << 20)
            fh.seek(data_end - block)
            tail = fh.read(block)
            cut = tail.rfind(b"\n")
            fh.truncate(0 if cut < 0 else data_end - block + cut + 1)

    @staticmethod
    def _line(row: Mapping[str, Any]) -> bytes:
        missing = [c for c in ("passage_id", "rater", KEY) if row.get(c) in (None, "")]
        if missing:
            raise DataValidationError(f"a rating row lacks {', '.join(missing)}")
        record = {c: _clean(row.get(c)) for c in RATINGS_COLUMNS}
        record[KEY] = row[KEY]
        return (json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n").encode()


def is_finished(row: Mapping[str, Any]) -> bool:
    error = row.get("error") or ""
    return not error or str(error).startswith(FINAL_ERROR_REASONS)
