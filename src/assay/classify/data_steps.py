"""The light steps of the training pipeline: load + validate and VIF (register: see
``assay.classify.registration``).

They live apart from ``assay.classify.steps`` so that their kfp.local subprocesses (and pods)
import the data and VIF code only, not the model-training, Ray and plotting stack.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from assay.classify.artifacts import ArtifactLike
from assay.classify.vif import run_vif
from assay.data.wdbc import load_dataset, write_dataset_csv
from assay.errors import DataValidationError
from assay.obs.logging import get_logger
from assay.registry.s3 import make_minio_client

log = get_logger("assay.classify.steps")


# -- load + validate -------------------------------------------------------------------------
def load_data_step(data: str, target: str, impute: str, dataset: ArtifactLike) -> dict[str, Any]:
    """Load WDBC (``data == ""``), a CSV path or an ``s3://bucket/key`` CSV; validate; write it."""
    with tempfile.TemporaryDirectory() as tmp:
        source = _local_copy(data, Path(tmp)) if data else None
        ds = load_dataset(source, target=target, impute=impute_mode(impute))
    write_dataset_csv(ds, Path(dataset.path))
    summary = {
        "source": data or ds.source,
        "rows": len(ds.y),
        "malignant": int(ds.y.sum()),
        "benign": int(len(ds.y) - ds.y.sum()),
        "data_hash": ds.data_hash,
    }
    dataset.metadata.update(summary)
    log.info("data loaded", **summary)
    return summary


def impute_mode(value: str) -> Literal["none", "median"]:
    """The --impute/impute parameter, checked."""
    if value == "none":
        return "none"
    if value == "median":
        return "median"
    raise DataValidationError(f"impute must be 'none' or 'median', not {value!r}.")


def _local_copy(data: str, tmp: Path) -> Path:
    """Local paths pass through; ``s3://bucket/key`` is downloaded with the MINIO_* settings."""
    if not data.startswith("s3://"):
        return Path(data)
    bucket, _, key = data[len("s3://") :].partition("/")
    if not bucket or not key:
        raise DataValidationError(f"Data location {data!r} must look like s3://bucket/path.csv.")
    dest = tmp / Path(key).name
    try:
        make_minio_client(None).fget_object(bucket, key, str(dest))
    except Exception as exc:
        raise DataValidationError(f"Could not download the data file {data}: {exc}") from exc
    return dest


# -- VIF ------------------------------------------------------------------------------------
def vif_step(dataset: ArtifactLike, vif_table: ArtifactLike) -> None:
    """Write the VIF table (analysis only, not a filter) as ``vif_table.path/vif.csv``."""
    table = run_vif(Path(dataset.path), Path(vif_table.path))
    vif_table.metadata["features"] = len(table)
