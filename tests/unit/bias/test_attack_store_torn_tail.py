"""Attack: while writer A is in the middle of appending a line to the ratings store (holding its
lock), writer B opens the same store and appends. B must not take A's unfinished line for a torn
tail and cut it: no line may be lost.

Two real processes on a real file. A is this test process, holding the store's flock with half a
line written; B is a child process running ``RatingsStore.append``. The interleaving is fixed by
the lock itself: A finishes its line only once /proc/locks shows B waiting for the lock.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import time
from pathlib import Path

import pytest

from assay.bias.store import RatingsStore

ROW_A = {"passage_id": "p1", "rater": "a", "key": "p1|a", "score": 1.0, "error": ""}
ROW_B = {"passage_id": "p2", "rater": "b", "key": "p2|b", "score": -1.0, "error": ""}


def append_b(path: str) -> None:
    with RatingsStore(path) as store:
        store.append([ROW_B])


def waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` is blocked on a lock (a ``->`` line of /proc/locks)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "->" and fields[5] == str(pid):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_second_writer_waits_instead_of_cutting_the_first_writers_line(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    line_a = RatingsStore._line(ROW_A)
    half = len(line_a) // 2
    with path.open("ab") as writer_a:
        fcntl.flock(writer_a.fileno(), fcntl.LOCK_EX)
        writer_a.write(line_a[:half])
        writer_a.flush()
        writer_b = multiprocessing.get_context("fork").Process(target=append_b, args=(str(path),))
        writer_b.start()
        give_up = time.monotonic() + 60
        while not waits_for_a_lock(writer_b.pid or -1):
            assert writer_b.is_alive(), "writer B finished while writer A held the lock"
            assert time.monotonic() < give_up, "writer B never waited for the lock"
            time.sleep(0.01)
        writer_a.write(line_a[half:])
        writer_a.flush()
        fcntl.flock(writer_a.fileno(), fcntl.LOCK_UN)
    writer_b.join(60)
    assert writer_b.exitcode == 0
    assert path.read_bytes() == line_a + RatingsStore._line(ROW_B)  # A's line whole, then B's
    assert [row["key"] for row in RatingsStore(path).rows()] == ["p1|a", "p2|b"]


def test_a_really_torn_tail_is_still_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_bytes(RatingsStore._line(ROW_A) + b'{"passage_id": "p9", "ra')
    with RatingsStore(path) as store:
        store.append([ROW_B])
    assert [row["key"] for row in RatingsStore(path).rows()] == ["p1|a", "p2|b"]


@pytest.mark.parametrize("torn_bytes", [(1 << 20) + 1, 5 << 20])
def test_a_torn_line_over_a_mebibyte_costs_only_itself(tmp_path: Path, torn_bytes: int) -> None:
    """Attack: a crash while a row over 1 MiB is being written, after 1,000 finished rows. The
    next append must cut the torn line only (a fixed 1 MiB look-back found no newline and
    truncated the whole file: 1,000 rows became 1)."""
    path = tmp_path / "ratings.jsonl"
    with RatingsStore(path) as store:
        store.append([{**ROW_A, "passage_id": f"p{i}", "key": f"p{i}|a"} for i in range(1000)])
    finished = path.read_bytes()
    huge = RatingsStore._line({**ROW_B, "explanation": "x" * (2 * torn_bytes)})
    with path.open("ab") as crashed_writer:
        crashed_writer.write(huge[:torn_bytes])  # the process died here
    with RatingsStore(path) as store:
        store.append([ROW_B])
    keys = [row["key"] for row in RatingsStore(path).rows()]
    assert len(keys) == 1001
    assert keys == [f"p{i}|a" for i in range(1000)] + ["p2|b"]
    assert path.read_bytes() == finished + RatingsStore._line(ROW_B)


def test_a_file_that_is_one_torn_line_is_emptied_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_bytes(RatingsStore._line(ROW_A)[:-1] + b"x" * (3 << 20))
    with RatingsStore(path) as store:
        store.append([ROW_B])
    assert path.read_bytes() == RatingsStore._line(ROW_B)
