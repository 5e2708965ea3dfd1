"""The ratings table contract (DESIGN.md): long form, one row per rating."""

from __future__ import annotations

RATINGS_COLUMNS: tuple[str, ...] = (
    "passage_id",
    "publisher",
    "textbook",
    "rater",
    "score",
    "biased",
    "confidence",
    "explanation",
    "prompt_version",
    "model",
    "tokens",
    "cost",
    "latency",
    "error",
)
"""Column order of every stored ratings table. ``textbook``, ``biased``, ``confidence`` and
``explanation`` may be empty; ``error`` is empty for a valid rating and holds the reason for a
failed one (the row is kept, ``score`` is then missing)."""

REQUIRED_COLUMNS: tuple[str, ...] = ("passage_id", "publisher", "rater")
