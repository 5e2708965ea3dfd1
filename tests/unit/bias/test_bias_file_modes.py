"""The bias run folder is meant to be read by others: report.html and the stored artifacts must
not be created 0600 (they were, by tempfile.mkstemp) and are replaced atomically.

report.html is written by ``bias.report.write_report`` through ``bias.io.atomic_write_text``;
drawing the real report needs a fitted posterior, so this test writes through the same function
the report uses rather than fitting a model.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from assay.bias.io import atomic_write_text, write_json, write_parquet


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_html_is_readable_by_other_users(tmp_path: Path, umask_022: None) -> None:
    report = tmp_path / "run" / "report.html"
    atomic_write_text(report, "<html>report</html>")
    assert _mode(report) == 0o644
    atomic_write_text(report, "<html>again</html>")  # replacing keeps the mode
    assert _mode(report) == 0o644 and report.read_text() == "<html>again</html>"
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temp left over


def test_run_artifacts_are_readable_by_other_users(tmp_path: Path, umask_022: None) -> None:
    write_json(tmp_path / "summary.json", {"a": float("nan")})
    write_parquet(tmp_path / "ratings.parquet", pd.DataFrame({"score": [1.0, -1.0]}))
    assert _mode(tmp_path / "summary.json") == 0o644
    assert _mode(tmp_path / "ratings.parquet") == 0o644


def test_private_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "report.html", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "report.html") == 0o600
