"""RatingsStore: durable appends, torn last lines, last row wins, resume semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _store_rows import row

from assay.bias.ratings import RATINGS_COLUMNS
from assay.bias.store import RatingsStore
from assay.errors import DataValidationError


def test_append_and_read_back_in_ratings_columns(tmp_path: Path):
    store = RatingsStore(tmp_path / "ratings")
    store.append([row(1), row(np.int64(2), score=np.float64(-1.5))])
    frame = store.to_frame()
    assert list(frame.columns) == list(RATINGS_COLUMNS)
    assert frame["score"].tolist() == [1.0, -1.5]
    assert "key" in store.to_frame(with_key=True).columns


def test_last_row_per_key_wins_and_finished_keys(tmp_path: Path):
    store = RatingsStore(tmp_path / "r.jsonl")
    store.append([row(1, error="timeout: slow"), row(2, error="parse_error: not JSON"), row(3)])
    assert store.finished_keys() == {"2|a", "3|a"}  # transient failures are retried on resume
    store.append([row(1)])
    assert store.finished_keys() == {"1|a", "2|a", "3|a"}
    assert len(store) == 3 and len(store.rows()) == 4


def test_torn_last_line_is_ignored_and_cut_before_next_append(tmp_path: Path):
    store = RatingsStore(tmp_path)
    store.append([row(1)])
    store.close()
    with store.file.open("ab") as fh:
        fh.write(b'{"passage_id": 2, "rat')  # killed mid-write
    reopened = RatingsStore(tmp_path)
    assert [r["passage_id"] for r in reopened.rows()] == [1]
    reopened.append([row(3)])
    assert [r["passage_id"] for r in reopened.rows()] == [1, 3]
    assert store.file.read_bytes().count(b"\n") == 2


def test_rows_need_identity(tmp_path: Path):
    with pytest.raises(DataValidationError, match="key"):
        RatingsStore(tmp_path).append([{"passage_id": 1, "rater": "a"}])
