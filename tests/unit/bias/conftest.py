"""Shared fixtures for the bias-study tests: where BABE lives (read-only, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
BABE_DIR = REPO_ROOT.parent / "shared" / "data" / "babe"


@pytest.fixture(scope="session")
def babe_dir() -> Path:
    """../shared/data/babe relative to the repository root; skip where it is not present."""
    if not (BABE_DIR / "raw_labels_SG2.csv").exists():
        pytest.skip(f"BABE data not present at {BABE_DIR} (AGPL data, read from ../shared only)")
    return BABE_DIR
