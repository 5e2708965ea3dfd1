"""The clinical operating point, chosen and scored without looking at the rows it is scored on.

Inside every outer training split the threshold is the highest one whose sensitivity on that
split's calibrated INNER out-of-fold predictions reaches the target; it is then applied to the
outer held-out fold. The per-fold held-out sensitivity, specificity, PPV and NPV are summarised
like every other CV metric (mean, Nadeau-Bengio corrected 95% CI). A threshold chosen on the
pooled out-of-fold predictions and scored on them is reported too, labelled "apparent": it meets
the target by construction.

Tables (in ``<train_dir>/cv/``): ``operating_point.csv`` (one row per model x outer fold: threshold,
held-out confusion counts, calibrator, calibration before/after) and ``calibrated_oof.csv`` (each
held-out row's uncalibrated and calibrated P(malignant)); ``final_inner_oof.csv`` holds the final
model's inner out-of-fold outcomes, calibration scores and calibrated P(malignant), from which its
calibrator and its threshold were learned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from assay.classify import calibration
from assay.classify.calibration import calibration_summary
from assay.classify.metrics import Confusion, choose_threshold, confusion_metrics, summarize

if TYPE_CHECKING:
    from assay.classify.units import UnitResult

OPERATING_CSV = "operating_point.csv"
CALIBRATED_OOF_CSV = "calibrated_oof.csv"
FINAL_INNER_CSV = "final_inner_oof.csv"
HELD_OUT_METRICS = ("sensitivity", "specificity", "ppv", "npv")
CALIBRATION_FIELDS = ("intercept", "slope", "brier")

RULE = (
    "inside each outer training split: calibrate (sigmoid fitted on the split's inner out-of-fold "
    "scores), then take the highest threshold on calibrated P(malignant) whose sensitivity on "
    "the split's calibrated inner out-of-fold predictions reaches the target; score it on the "
    "outer held-out fold"
)
FINAL_SOURCE = (
    "the final model's own calibrated inner out-of-fold predictions (the final refit's nested "
    "search over all rows); same rule as inside the CV"
)
APPARENT_NOTE = (
    "APPARENT: threshold chosen on the pooled calibrated out-of-fold predictions (all repeats) "
    "and scored on the same predictions, so it meets the target by construction; not an estimate"
)
HELD_OUT_NOTE = (
    "held-out: each outer fold scored at the threshold chosen on its own training split; mean and "
    "95% CI over the outer folds (Nadeau-Bengio corrected)"
)


def fold_row(result: UnitResult, target: float) -> dict[str, Any]:
    """One model x outer fold: threshold from the inner OOF, scored on the held-out fold."""
    choice = choose_threshold(result.inner_y, result.inner_p_calibrated, target)
    held_out = Confusion.from_predictions(result.y_test, result.p_calibrated >= choice.threshold)
    before = calibration_summary(result.y_test, result.p_test)
    after = calibration_summary(result.y_test, result.p_calibrated)
    return {
        "model": result.model,
        "fold_id": result.fold_id,
        "repeat": result.repeat,
        "n_train": result.n_train,
        "n_test": len(result.test_rows),
        "threshold": choice.threshold,
        "inner_sensitivity": choice.sensitivity,
        "inner_specificity": choice.specificity,
        "tn": held_out.tn,
        "fp": held_out.fp,
        "fn": held_out.fn,
        "tp": held_out.tp,
        "calibrator_a": result.calibrator["a"],
        "calibrator_b": result.calibrator["b"],
        **{f"{name}_before": before[name] for name in CALIBRATION_FIELDS},
        **{f"{name}_after": after[name] for name in CALIBRATION_FIELDS},
    }


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    os.replace(tmp, path)


def write_tables(cv_dir: Path, results: Iterable[UnitResult], target: float) -> None:
    """``operating_point.csv`` and ``calibrated_oof.csv`` of the outer-CV units."""
    results = list(results)
    _write_csv(pd.DataFrame([fold_row(r, target) for r in results]), cv_dir / OPERATING_CSV)
    calibrated = pd.DataFrame(
        [
            {
                "model": r.model,
                "fold_id": r.fold_id,
                "repeat": r.repeat,
                "row": int(row),
                "y_true": int(t),
                "p_raw": float(raw),
                "p_calibrated": float(cal),
            }
            for r in results
            for row, t, raw, cal in zip(
                r.test_rows, r.y_test, r.p_test, r.p_calibrated, strict=True
            )
        ]
    )
    _write_csv(calibrated, cv_dir / CALIBRATED_OOF_CSV)


def read_tables(cv_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(operating_point.csv, calibrated_oof.csv) of a training folder."""
    return pd.read_csv(cv_dir / OPERATING_CSV), pd.read_csv(cv_dir / CALIBRATED_OOF_CSV)


def write_final_inner(cv_dir: Path, final: UnitResult) -> None:
    frame = pd.DataFrame(
        {
            "y_true": final.inner_y,
            "score": final.inner_score,
            "p_calibrated": final.inner_p_calibrated,
        }
    )
    _write_csv(frame, cv_dir / FINAL_INNER_CSV)


def final_threshold(final: UnitResult, target: float) -> dict[str, Any]:
    """The exported model's threshold, from its own calibrated inner out-of-fold predictions."""
    choice = choose_threshold(final.inner_y, final.inner_p_calibrated, target)
    return {
        "threshold": choice.threshold,
        "source": FINAL_SOURCE,
        "apparent_on_final_inner_oof": {
            "sensitivity": choice.sensitivity,
            "specificity": choice.specificity,
            "note": "scored on the predictions the threshold was chosen on (apparent)",
        },
    }


def held_out(table: pd.DataFrame, key: str) -> dict[str, Any]:
    """Held-out sensitivity/specificity/PPV/NPV of one model (mean, 95% CI), misses per repeat."""
    rows = table[table["model"] == key].sort_values("fold_id")
    per_fold = [
        confusion_metrics(Confusion(tn=int(r.tn), fp=int(r.fp), fn=int(r.fn), tp=int(r.tp)))
        for r in rows.itertuples()
    ]
    n_train, n_test = float(rows["n_train"].mean()), float(rows["n_test"].mean())
    by_repeat = rows.groupby("repeat")[["fn", "tp", "fp", "tn"]].sum()
    totals = {name: int(rows[name].sum()) for name in ("tn", "fp", "fn", "tp")}
    return {
        **{m: summarize([f[m] for f in per_fold], n_train, n_test) for m in HELD_OUT_METRICS},
        "missed_positives_per_repeat": [int(v) for v in by_repeat["fn"]],
        "positives_per_repeat": [int(v) for v in by_repeat["fn"] + by_repeat["tp"]],
        "false_positives_per_repeat": [int(v) for v in by_repeat["fp"]],
        "pooled_counts": totals,
        "threshold_range": {
            "min": float(rows["threshold"].min()),
            "median": float(rows["threshold"].median()),
            "max": float(rows["threshold"].max()),
        },
        "note": HELD_OUT_NOTE,
    }


def apparent(calibrated_oof: pd.DataFrame, key: str, target: float) -> dict[str, Any]:
    """The pooled-OOF threshold and its figures on the same predictions, labelled apparent."""
    rows = calibrated_oof[calibrated_oof["model"] == key].sort_values(["repeat", "row"])
    choice = choose_threshold(rows["y_true"], rows["p_calibrated"], target)
    return {**choice.as_dict(), "note": APPARENT_NOTE}


def clinical_entry(
    table: pd.DataFrame,
    calibrated_oof: pd.DataFrame,
    key: str,
    final: dict[str, Any],
    target: float,
) -> dict[str, Any]:
    """``clinical_threshold`` of summary.json/metrics.json: which figure is which."""
    return {
        **final,
        "target_sensitivity": target,
        "rule": RULE,
        "held_out": held_out(table, key),
        "apparent": apparent(calibrated_oof, key, target),
    }


def held_out_confusion(table: pd.DataFrame, key: str) -> list[list[int]]:
    """[[tn, fp], [fn, tp]] summed over the outer folds, each at its own held-out threshold."""
    rows = table[table["model"] == key]
    total = {name: int(rows[name].sum()) for name in ("tn", "fp", "fn", "tp")}
    return [[total["tn"], total["fp"]], [total["fn"], total["tp"]]]


def calibration_by_model(
    table: pd.DataFrame, calibrated_oof: pd.DataFrame, key: str
) -> dict[str, Any]:
    """Calibration before/after of one model: pooled held-out rows, and per outer fold."""
    pooled = calibrated_oof[calibrated_oof["model"] == key]
    rows = table[table["model"] == key]
    n_train, n_test = float(rows["n_train"].mean()), float(rows["n_test"].mean())
    per_fold = {
        f"{name}_{when}": summarize(
            rows[f"{name}_{when}"].tolist(),
            n_train,
            n_test,
            scale="logit" if name == "brier" else "identity",
        )
        for name in CALIBRATION_FIELDS
        for when in ("before", "after")
    }
    return {
        "before": calibration_summary(pooled["y_true"], pooled["p_raw"]),
        "after": calibration_summary(pooled["y_true"], pooled["p_calibrated"]),
        "per_fold": per_fold,
    }


def summaries(
    table: pd.DataFrame, calibrated_oof: pd.DataFrame, keys: list[str]
) -> dict[str, dict[str, Any]]:
    """metrics.json's ``operating_point`` and ``calibration`` sections, every model."""
    return {
        "operating_point": {"rule": RULE, "models": {k: held_out(table, k) for k in keys}},
        "calibration": {
            "method": calibration.METHOD,
            "description": calibration.DESCRIPTION,
            "slope_definition": calibration.SLOPE_DEFINITION,
            "models": {k: calibration_by_model(table, calibrated_oof, k) for k in keys},
        },
    }


def protocol_entries(target: float) -> dict[str, Any]:
    """The protocol's ``clinical_threshold`` and ``calibration`` entries."""
    return {
        "clinical_threshold": {
            "target_sensitivity": target,
            "rule": RULE,
            "final_model": FINAL_SOURCE,
            "apparent": APPARENT_NOTE,
        },
        "calibration": {
            "method": calibration.METHOD,
            "description": calibration.DESCRIPTION,
            "slope_definition": calibration.SLOPE_DEFINITION,
        },
    }


def card_entries(
    clinical: dict[str, Any], calibrated: dict[str, Any], sigmoid: dict[str, float]
) -> dict[str, Any]:
    """What the model card says about its threshold and its probabilities, each figure named."""
    held = clinical["held_out"]
    return {
        "operating_point": {
            "threshold": clinical["threshold"],
            "threshold_scale": "calibrated P(malignant), as served",
            "threshold_source": clinical["source"],
            "target_sensitivity": clinical["target_sensitivity"],
            "held_out_cv_estimate": {
                **{m: held[m] for m in HELD_OUT_METRICS},
                "missed_positives_per_repeat": held["missed_positives_per_repeat"],
                "positives_per_repeat": held["positives_per_repeat"],
                "note": HELD_OUT_NOTE + "; the estimate for this threshold rule",
            },
            "apparent": clinical["apparent"],
            "apparent_on_final_inner_oof": clinical["apparent_on_final_inner_oof"],
        },
        "calibration": {
            "method": calibration.METHOD,
            "description": calibration.DESCRIPTION,
            "served_probability": "calibrated",
            "sigmoid": {**sigmoid, "formula": "P = 1 / (1 + exp(a * score + b))"},
            "held_out_before": calibrated["before"],
            "held_out_after": calibrated["after"],
            "slope_definition": calibration.SLOPE_DEFINITION,
        },
    }


def scalar_metrics(clinical: dict[str, Any], calibration: dict[str, Any]) -> dict[str, float]:
    """The clinical and calibration scalars of the selected model (KFP Metrics)."""
    out = {"clinical_threshold": float(clinical["threshold"])}
    for name in ("sensitivity", "specificity"):
        s = clinical["held_out"][name]
        out[f"clinical_{name}_heldout_mean"] = s["mean"]
        out[f"clinical_{name}_heldout_ci_low"] = s["ci_low"]
        out[f"clinical_{name}_heldout_ci_high"] = s["ci_high"]
        out[f"clinical_{name}_apparent"] = float(clinical["apparent"][name])
    for when in ("before", "after"):
        for name in CALIBRATION_FIELDS:
            out[f"calibration_{name}_{when}"] = float(calibration[when][name])
    return out
