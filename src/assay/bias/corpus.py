"""Passage corpora and pre-collected ratings: reading, validation and publisher normalisation.

A corpus is a table with ``passage_id``, ``text`` and ``publisher`` and optionally
``textbook`` (or ``source``), ``topic`` and ground-truth fields (``true_score``,
``true_biased``, ``expert_label``). It may be CSV, JSONL or Parquet. Problems a user can fix
raise :class:`assay.errors.DataValidationError` (exit code 2) with a sentence naming them.

Publisher names are normalised so that "Fox News", "fox news " and "Fox-News" are one
publisher; :func:`normalise_publishers` returns the mapping so reports can show it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from assay.bias.ratings import RATINGS_COLUMNS, REQUIRED_COLUMNS
from assay.errors import DataValidationError
from assay.storage.s3 import local_copy

CORPUS_REQUIRED: tuple[str, ...] = ("passage_id", "text", "publisher")
GROUND_TRUTH_COLUMNS: tuple[str, ...] = ("true_score", "true_biased", "expert_label")
"""Optional per-passage truth: a hidden score (synthetic corpora), a 0/1 label, or an expert
label on the study's scale (BABE's majority vote). Used for per-rater agreement and recovery."""

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d\u2013\u2014]")
_SPACES = re.compile(r"\s+")
_MAX_LISTED = 5


@dataclass
class Corpus:
    """A validated corpus and what normalisation did to it."""

    passages: pd.DataFrame
    publisher_mapping: dict[str, str] = field(default_factory=dict)
    source: str = ""


def publisher_key(name: str) -> str:
    """The comparison key of a publisher name: lower case, no punctuation, single spaces."""
    without_punctuation = _PUNCTUATION.sub(" ", str(name).casefold())
    return _SPACES.sub(" ", without_punctuation).strip()


def _tidy(name: str) -> str:
    return _SPACES.sub(" ", str(name)).strip()


def normalise_publishers(names: pd.Series) -> tuple[pd.Series, dict[str, str]]:
    """Map every spelling to one canonical name per :func:`publisher_key`.

    The canonical name is the most frequent tidied spelling of the key (ties: first seen).
    Returns the normalised series and ``{original: canonical}`` for every spelling that changed.
    """
    tidied = names.map(_tidy)
    keys = tidied.map(publisher_key)
    counts = pd.DataFrame({"key": keys, "name": tidied}).value_counts(sort=False)
    first_seen = {name: i for i, name in enumerate(dict.fromkeys(tidied))}
    canonical: dict[str, str] = {}
    for key, group in counts.groupby(level="key"):
        spellings = sorted(
            ((int(n), name) for (_, name), n in group.items()),
            key=lambda item: (-item[0], first_seen[item[1]]),
        )
        canonical[str(key)] = spellings[0][1]
    normalised = keys.map(canonical)
    mapping = {
        str(original): canonical[publisher_key(_tidy(original))]
        for original in dict.fromkeys(names)
        if str(original) != canonical[publisher_key(_tidy(original))]
    }
    return normalised, mapping


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV, JSONL/NDJSON or Parquet by extension, with a clear error otherwise.

    ``path`` is a local file or an ``s3://bucket/key`` object (MINIO_* settings)."""
    shown = str(path)
    suffix = Path(shown).suffix.lower()
    if suffix not in _READERS:
        raise DataValidationError(
            f"{shown} has an unsupported extension {suffix!r}; use .csv, .jsonl or .parquet."
        )
    with local_copy(path) as local:
        if not local.is_file():
            raise DataValidationError(f"The file {shown} does not exist.")
        try:
            return _READERS[suffix](local)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise DataValidationError(f"Could not read {shown}: {exc}") from exc


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": lambda p: pd.read_csv(p, dtype={"passage_id": str}, keep_default_na=True),
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype={"passage_id": str}),
    ".ndjson": lambda p: pd.read_json(p, lines=True, dtype={"passage_id": str}),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}


def _listed(values: pd.Series | list) -> str:
    items = [str(v) for v in list(values)[:_MAX_LISTED]]
    more = len(values) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def validate_corpus(frame: pd.DataFrame, source: str = "corpus") -> Corpus:
    """Check the required columns and values, normalise publishers, return a :class:`Corpus`.

    Accepts ``source`` as an alias of ``textbook``. Rows are 1-based data rows in messages.
    """
    frame = frame.copy()
    if "textbook" not in frame and "source" in frame:
        frame = frame.rename(columns={"source": "textbook"})
    missing = [c for c in CORPUS_REQUIRED if c not in frame]
    if missing:
        raise DataValidationError(
            f"{source} lacks the required column(s) {', '.join(missing)}; a corpus needs "
            f"{', '.join(CORPUS_REQUIRED)}."
        )
    if frame.empty:
        raise DataValidationError(f"{source} has no passages.")
    frame["passage_id"] = frame["passage_id"].astype(str).str.strip()
    rows = pd.Series(range(1, len(frame) + 1), index=frame.index)
    for column, what in (("passage_id", "an empty passage_id"), ("text", "empty text")):
        bad = _blank(frame[column]) | (frame[column].astype(str) == "nan")
        if bad.any():
            raise DataValidationError(f"{source} has {what} in row(s) {_listed(rows[bad])}.")
    no_publisher = _blank(frame["publisher"])
    if no_publisher.any():
        raise DataValidationError(
            f"{source} has a missing publisher in row(s) {_listed(rows[no_publisher])}."
        )
    duplicated = frame["passage_id"].duplicated(keep=False)
    if duplicated.any():
        ids = frame.loc[duplicated, "passage_id"].drop_duplicates()
        raise DataValidationError(f"{source} has duplicate passage_id value(s) {_listed(ids)}.")
    frame["publisher"], mapping = normalise_publishers(frame["publisher"])
    if "textbook" in frame:
        frame["textbook"] = frame["textbook"].map(
            lambda v: None if pd.isna(v) or not str(v).strip() else _tidy(v)
        )
    return Corpus(passages=frame.reset_index(drop=True), publisher_mapping=mapping, source=source)


def load_corpus(path: str | Path) -> Corpus:
    """Read and validate a corpus file."""
    return validate_corpus(read_table(path), source=str(path))


def validate_ratings(frame: pd.DataFrame, source: str = "ratings") -> tuple[pd.DataFrame, dict]:
    """Check a long ratings table, normalise publishers, fill optional columns.

    Returns the table in ``RATINGS_COLUMNS`` order (plus any extra columns) and the publisher
    mapping. A row with a non-empty ``error`` is a failed rating and keeps its missing score.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise DataValidationError(
            f"{source} lacks the required column(s) {', '.join(missing)}; a ratings table "
            f"needs {', '.join(REQUIRED_COLUMNS)} and a score or biased column."
        )
    if "score" not in frame and "biased" not in frame:
        raise DataValidationError(f"{source} has neither a score nor a biased column.")
    if frame.empty:
        raise DataValidationError(f"{source} has no ratings.")
    frame = frame.copy()
    rows = pd.Series(range(1, len(frame) + 1), index=frame.index)
    for column in REQUIRED_COLUMNS:
        bad = _blank(frame[column])
        if bad.any():
            raise DataValidationError(
                f"{source} has an empty {column} in row(s) {_listed(rows[bad])}."
            )
    for column in RATINGS_COLUMNS:
        if column not in frame:
            frame[column] = pd.NA
    frame["passage_id"] = frame["passage_id"].astype(str).str.strip()
    frame["rater"] = frame["rater"].astype(str).str.strip()
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    frame["biased"] = pd.to_numeric(frame["biased"], errors="coerce").astype("Int64")
    frame["error"] = frame["error"].fillna("").astype(str)
    frame["publisher"], mapping = normalise_publishers(frame["publisher"])
    conflicting = frame.groupby("passage_id")["publisher"].nunique()
    conflicting = conflicting[conflicting > 1]
    if len(conflicting):
        raise DataValidationError(
            f"{source} gives more than one publisher for passage(s) {_listed(conflicting.index)}."
        )
    extra = [c for c in frame.columns if c not in RATINGS_COLUMNS]
    return frame[list(RATINGS_COLUMNS) + extra].reset_index(drop=True), mapping


def load_ratings(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read and validate a long ratings table (CSV, JSONL or Parquet)."""
    return validate_ratings(read_table(path), source=str(path))
