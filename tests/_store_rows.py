"""One row of the ratings store as the rating engine appends it (shared by the store tests)."""

from __future__ import annotations

from typing import Any


def row(pid: Any, rater: str = "a", error: str = "", score: Any = 1.0) -> dict[str, Any]:
    return {
        "passage_id": pid,
        "publisher": "P",
        "rater": rater,
        "score": None if error else score,
        "error": error,
        "key": f"{pid}|{rater}",
    }
