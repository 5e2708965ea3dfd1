"""Atomic writes for run-folder artifacts: write to a temporary file, then rename."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from assay.obs.files import atomic_write


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """fsynced, renamed into place, mode 0666 minus umask (report.html is for other readers)."""
    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    _atomic(Path(path), write)


def write_json(path: Path, payload: Any) -> None:
    """JSON with NaN turned into null, written atomically."""
    atomic_write_text(Path(path), json.dumps(_clean(payload), indent=2, allow_nan=False))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return _clean(value.item())
    return value


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    _atomic(Path(path), lambda tmp: frame.to_parquet(tmp, index=False))


def write_netcdf(path: Path, idata: Any) -> None:
    _atomic(Path(path), lambda tmp: idata.to_netcdf(str(tmp)))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
