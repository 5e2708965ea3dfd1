"""The load-data step reads s3://bucket/key.csv through the minio client (moto stands in for
MinIO; see conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from assay.classify.steps import load_data_step
from assay.errors import DataValidationError
from assay.registry.s3 import make_minio_client

pytestmark = [pytest.mark.s3, pytest.mark.integration]


class Artifact:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = {}


def test_load_data_step_downloads_a_csv_from_s3(minio_env: str, tmp_path: Path) -> None:
    from assay.data.wdbc import load_dataset

    ds = load_dataset()
    frame = ds.X.copy()
    frame["diagnosis"] = ["M" if v == 1 else "B" for v in ds.y]
    payload = frame.to_csv(index=False).encode()
    client = make_minio_client(None)
    client.make_bucket("assay-data")
    client.put_object("assay-data", "in/wdbc.csv", io.BytesIO(payload), len(payload))

    dataset = Artifact(tmp_path / "dataset.csv")
    summary = load_data_step("s3://assay-data/in/wdbc.csv", "diagnosis", "none", dataset)

    assert summary["rows"] == 569 and summary["malignant"] == 212
    assert summary["data_hash"] == ds.data_hash
    with pytest.raises(DataValidationError, match="Could not download"):
        load_data_step("s3://assay-data/in/absent.csv", "diagnosis", "none", dataset)
