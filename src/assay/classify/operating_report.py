"""The report's clinical operating point and calibration sections (what the template shows)."""

from __future__ import annotations

from typing import Any

from assay.classify.models import MODELS
from assay.classify.names import UNDEFINED
from assay.classify.operating_point import HELD_OUT_METRICS
from assay.obs import html


def _ci(s: dict[str, Any]) -> html.Stacked:
    return html.Stacked(f"{s['mean']:.4f}", f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]")


def _misses(entry: dict[str, Any]) -> str:
    missed, positives = entry["missed_positives_per_repeat"], entry["positives_per_repeat"]
    return ", ".join(f"{m}/{p}" for m, p in zip(missed, positives, strict=True))


def clinical_view(metrics: dict[str, Any]) -> dict[str, Any]:
    """Which threshold is served, its held-out estimate, and the apparent figure, each named."""
    clinical = metrics["clinical_threshold"]
    return {
        "label": MODELS[metrics["selected_model"]].label,
        "clinical": clinical,
        "held": clinical["held_out"],
        "seen": clinical["apparent"],
        "misses": _misses(clinical["held_out"]),
    }


def operating_point_table(metrics: dict[str, Any]) -> html.Table:
    """Held-out figures at the clinical threshold rule, every model."""
    rows = []
    for key, entry in metrics["operating_point"]["models"].items():
        mark = " *" if key == metrics["selected_model"] else ""
        band = entry["threshold_range"]
        rows.append(
            [
                MODELS[key].label + mark,
                *[_ci(entry[m]) for m in HELD_OUT_METRICS],
                _misses(entry),
                f"{band['median']:.3f} [{band['min']:.3f}, {band['max']:.3f}]",
            ]
        )
    header = [
        "model",
        *[f"held-out {m}" for m in HELD_OUT_METRICS],
        "missed malignant / malignant, per repeat",
        "fold thresholds: median [min, max]",
    ]
    return html.table(header, rows, 4, nan=UNDEFINED)


def calibration_table(metrics: dict[str, Any]) -> html.Table:
    """Calibration intercept, slope and Brier of the held-out rows, before and after."""
    rows = []
    for key, entry in metrics["calibration"]["models"].items():
        mark = " *" if key == metrics["selected_model"] else ""
        before, after = entry["before"], entry["after"]
        rows.append(
            [
                MODELS[key].label + mark,
                *[
                    value
                    for name in ("slope", "intercept", "brier")
                    for value in (before[name], after[name])
                ],
                _ci(entry["per_fold"]["brier_before"]),
                _ci(entry["per_fold"]["brier_after"]),
            ]
        )
    header = [
        "model",
        "slope before",
        "slope after",
        "intercept before",
        "intercept after",
        "Brier before",
        "Brier after",
        "per-fold Brier before",
        "per-fold Brier after",
    ]
    return html.table(header, rows, 4, nan=UNDEFINED)
