"""Unit results <-> the CSV tables a training run leaves in ``<train_dir>/cv/``.

The evaluation stage reads only these files (never process memory), so a report can be rebuilt
from a finished run folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from assay.classify.metrics import score_all

if TYPE_CHECKING:
    from assay.classify.units import UnitResult

OOF_CSV = "oof.csv"
FOLDS_CSV = "folds.csv"
LATENCY_CSV = "latency.csv"
SINGLE_SPLIT_CSV = "single_split.csv"
SUMMARY_JSON = "summary.json"
UNITS_JSONL = "units.jsonl"


def fold_row(result: UnitResult) -> dict[str, object]:
    """One row of folds.csv: the unit's metrics at the default 0.5 threshold, times, choices."""
    row: dict[str, object] = {
        "model": result.model,
        "fold_id": result.fold_id,
        "repeat": result.repeat,
        "n_train": result.n_train,
        "n_test": len(result.test_rows),
    }
    row.update(score_all(result.y_test, result.p_test))
    row.update(
        fit_seconds=result.fit_seconds,
        tune_seconds=result.tune_seconds,
        cpu_seconds=result.cpu_seconds,
        best_params=json.dumps(result.best_params, sort_keys=True),
        inner_scores=json.dumps(result.candidate_scores),
        selected=json.dumps(result.selected),
    )
    return row


def append_unit(path: Path, result: UnitResult) -> None:
    """Append one finished unit (a JSON line) so a crash keeps what was done."""
    record = fold_row(result)
    record["rows"] = [int(r) for r in result.test_rows]
    record["p_malignant"] = [float(p) for p in result.p_test]
    record["latency_seconds"] = result.latency_seconds
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, allow_nan=True) + "\n")
        handle.flush()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    os.replace(tmp, path)


def write_tables(cv_dir: Path, cv: Iterable[UnitResult], single: Iterable[UnitResult]) -> None:
    cv = list(cv)
    oof = pd.DataFrame(
        [
            {
                "model": r.model,
                "fold_id": r.fold_id,
                "repeat": r.repeat,
                "row": int(row),
                "y_true": int(t),
                "p_malignant": float(p),
            }
            for r in cv
            for row, t, p in zip(r.test_rows, r.y_test, r.p_test, strict=True)
        ]
    )
    latency = pd.DataFrame(
        [
            {"model": r.model, "fold_id": r.fold_id, "seconds": s}
            for r in cv
            for s in r.latency_seconds
        ]
    )
    _write_csv(oof, cv_dir / OOF_CSV)
    _write_csv(pd.DataFrame([fold_row(r) for r in cv]), cv_dir / FOLDS_CSV)
    _write_csv(latency, cv_dir / LATENCY_CSV)
    _write_csv(pd.DataFrame([fold_row(r) for r in single]), cv_dir / SINGLE_SPLIT_CSV)


def read_table(cv_dir: Path, name: str) -> pd.DataFrame:
    path = cv_dir / name
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
