"""The classifier's stages, folder in, folder out; ``assay.classify.steps`` calls one per step.

* ``run_vif``        dataset CSV -> ``vif.csv`` (in ``assay.classify.vif``)
* ``run_training``   dataset CSV -> ``cv/`` tables + ``model/{model.joblib, model-card.json}``
* ``run_evaluation`` training folder + vif.csv -> ``metrics.json``, ``report.html``, PNGs
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.classify import operating_point, tables
from assay.classify.config import TrainConfig
from assay.classify.cv import NestedCV
from assay.classify.evaluate import select_model, summarize_all
from assay.classify.executor import make_executor
from assay.classify.export import (
    feature_ranges,
    model_card,
    save_model,
    with_threshold,
    write_json,
)
from assay.classify.importance import permutation_importance
from assay.classify.protocol import protocol
from assay.classify.report import build_metrics, write_report
from assay.classify.seeds import derive_seed
from assay.data.wdbc import FEATURE_NAMES, read_dataset_csv
from assay.obs.logging import get_logger

log = get_logger("assay.classify.stages")

CV_DIR = "cv"
MODEL_DIR = "model"
METRICS_JSON = "metrics.json"
REPORT_HTML = "report.html"


def run_training(
    dataset_csv: Path,
    config: TrainConfig,
    out_dir: Path,
    *,
    executor: str = "ray",
    progress: bool = True,
    source: str | None = None,
) -> dict[str, Any]:
    """Nested CV on Ray, selection, clinical threshold, final refit on all rows, export.

    Writes ``out_dir/cv/{units.jsonl, oof.csv, folds.csv, latency.csv, single_split.csv,
    operating_point.csv, calibrated_oof.csv, final_inner_oof.csv, summary.json}`` and
    ``out_dir/model/{model.joblib, model-card.json}``; returns a summary.
    ``executor="inline"`` runs every unit in this process (tests that spy on the steps).
    ``source``: where the data came from, as the user named it (default: the CSV's path).
    """
    started = time.perf_counter()
    ds = read_dataset_csv(Path(dataset_csv))
    out_dir = Path(out_dir)
    cv_dir = out_dir / CV_DIR
    cv_dir.mkdir(parents=True, exist_ok=True)
    units_log = cv_dir / tables.UNITS_JSONL
    units_log.write_text("")
    X = ds.X.to_numpy(dtype=np.float64)
    y = ds.y.to_numpy(dtype=np.int64)
    log.info("training started", rows=len(y), models=config.model_keys(), **_cv_shape(config))

    runner = NestedCV(X, y, config, make_executor(executor, config.workers), progress=progress)
    results = runner.run(on_result=lambda r: tables.append_unit(units_log, r))
    single_id = runner.single.fold_id if runner.single else None
    cv_results = [r for r in results if r.fold_id != single_id]
    single_results = [r for r in results if r.fold_id == single_id]
    tables.write_tables(cv_dir, cv_results, single_results)
    operating_point.write_tables(cv_dir, cv_results, config.target_sensitivity)
    cv_seconds = time.perf_counter() - started

    folds = tables.read_table(cv_dir, tables.FOLDS_CSV)
    latency = tables.read_table(cv_dir, tables.LATENCY_CSV)
    summaries = summarize_all(folds, latency)
    selection = select_model(folds, config.selection_metric)
    selected = selection["selected"]
    final = runner.refit_final(selected)
    selected_features = [str(ds.X.columns[i]) for i in final.selected]
    clinical, card_extras = _operating_point(cv_dir, selected, final, config.target_sensitivity)
    threshold = float(clinical["threshold"])

    card_metrics = {m: s["mean"] for m, s in summaries[selected]["cv"].items()}
    card_metrics.update(_clinical_card_metrics(clinical))
    proto = protocol(config, runner.candidates)
    summary: dict[str, Any] = {
        "config": config.model_dump(),
        "protocol": proto,
        "data": _data_facts(ds, source),
        "selected_model": selected,
        "selection": selection,
        "permutation_importance": _apparent_importance(final, X, y, config.seed),
        "clinical_threshold": clinical,
        "final_model": {
            "estimator": selected,
            "best_params": final.best_params,
            "inner_scores": final.candidate_scores,
            "selected_features": selected_features,
            "selected_indices": final.selected,
        },
        "timings": {
            "cv_seconds": cv_seconds,
            "unit_cpu_seconds": sum(r.cpu_seconds for r in [*results, final]),
            "total_seconds": time.perf_counter() - started,
            "workers": runner.executor.workers,
        },
    }
    _save_model(
        out_dir / MODEL_DIR,
        final.pipeline,
        ds,
        config,
        selected,
        selected_features,
        threshold,
        card_metrics,
        proto["text"],
        final.best_params,
        card_extras,
    )
    summary["timings"]["total_seconds"] = time.perf_counter() - started
    write_json(cv_dir / tables.SUMMARY_JSON, summary)
    log.info(
        "training finished",
        selected=selected,
        roc_auc=summaries[selected]["cv"]["roc_auc"]["mean"],
        threshold=threshold,
        seconds=round(summary["timings"]["total_seconds"], 1),
    )
    return {
        "selected_model": selected,
        "threshold": threshold,
        "metrics": card_metrics,
        "model_dir": str(out_dir / MODEL_DIR),
        "data_hash": ds.data_hash,
        "seconds": summary["timings"]["total_seconds"],
    }


def _apparent_importance(final: Any, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Permutation importance of the final model on its own training rows (labelled apparent)."""
    return permutation_importance(
        final.pipeline, X, y, final.selected, FEATURE_NAMES, derive_seed(seed, "permutation")
    )


def _operating_point(
    cv_dir: Path, selected: str, final: Any, target: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The selected model's clinical_threshold entry and the card's operating point/calibration."""
    table, calibrated_oof = operating_point.read_tables(cv_dir)
    operating_point.write_final_inner(cv_dir, final)
    final_choice = operating_point.final_threshold(final, target)
    clinical = operating_point.clinical_entry(table, calibrated_oof, selected, final_choice, target)
    calibrated = operating_point.calibration_by_model(table, calibrated_oof, selected)
    return clinical, operating_point.card_entries(clinical, calibrated, final.calibrator)


def _clinical_card_metrics(clinical: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name in ("sensitivity", "specificity"):
        out[f"clinical_{name}_heldout"] = clinical["held_out"][name]["mean"]
        out[f"clinical_{name}_apparent"] = clinical["apparent"][name]
    return out


def _cv_shape(config: TrainConfig) -> dict[str, int]:
    return {
        "folds": config.folds,
        "repeats": config.repeats,
        "inner_folds": config.inner_folds,
        "tuning_iter": config.tuning_iter,
    }


def _data_facts(ds: Any, source: str | None) -> dict[str, Any]:
    return {
        "source": source or ds.source,
        "data_hash": ds.data_hash,
        "rows": len(ds.y),
        "malignant": int(ds.y.sum()),
        "benign": int((ds.y == 0).sum()),
    }


def _save_model(
    model_dir: Path,
    pipeline: Any,
    ds: Any,
    config: TrainConfig,
    selected: str,
    selected_features: list[str],
    threshold: float,
    metrics: dict[str, float],
    protocol_text: str,
    best_params: dict[str, Any],
    card_extras: dict[str, Any],
) -> None:
    card = model_card(
        model_name=config.model_name,
        estimator=selected,
        feature_names=list(FEATURE_NAMES),
        selected_features=selected_features,
        threshold=threshold,
        metrics=metrics,
        data_hash=ds.data_hash,
        seed=config.seed,
        protocol=protocol_text,
        best_params=best_params,
        feature_ranges=feature_ranges(ds.X[list(FEATURE_NAMES)], list(FEATURE_NAMES)),
    )
    card.update(card_extras)
    X_train = ds.X[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    save_model(model_dir, with_threshold(pipeline, threshold, X_train, ds.y.to_numpy()), card)
    log.info("model exported", path=str(model_dir), estimator=selected)


def run_evaluation(train_dir: Path, vif_csv: Path, out_dir: Path) -> dict[str, Any]:
    """metrics.json, a self-contained report.html and the plot PNGs from a training folder.

    Returns {"selected_model", "scalar_metrics", "roc_curve", "confusion_matrix"} for the
    pipeline's Metrics/ClassificationMetrics artifacts.
    """
    train_dir, out_dir = Path(train_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cv_dir = train_dir / CV_DIR
    summary = json.loads((cv_dir / tables.SUMMARY_JSON).read_text())
    vif = pd.read_csv(vif_csv) if vif_csv and Path(vif_csv).exists() else pd.DataFrame()
    metrics, frames = build_metrics(cv_dir, summary, vif)
    write_json(out_dir / METRICS_JSON, metrics)
    write_report(out_dir, metrics, frames)
    log.info("evaluation written", out=str(out_dir), selected=metrics["selected_model"])
    selected = metrics["selected_model"]
    return {
        "selected_model": selected,
        "scalar_metrics": metrics["scalar_metrics"],
        "roc_curve": metrics["roc_curve"],
        "confusion_matrix": metrics["confusion_matrix"],
        "summary": metrics["summary"],
    }
