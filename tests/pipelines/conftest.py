"""Fixtures for pipeline tests: WDBC written as a CSV in the documented input format."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_wdbc_csv(path: Path) -> Path:
    """WDBC as a user would supply it: an id column, shuffled feature columns, M/B labels."""
    import numpy as np

    from assay.data.wdbc import FEATURE_NAMES, load_dataset

    ds = load_dataset()
    frame = ds.X.copy()
    frame.insert(0, "id", np.arange(1000, 1000 + len(frame)))
    frame["diagnosis"] = np.where(ds.y.to_numpy() == 1, "M", "B")
    columns = ["id", "diagnosis", *reversed(FEATURE_NAMES)]
    frame[columns].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def wdbc_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wdbc_csv(tmp_path_factory.mktemp("data") / "wdbc.csv")
