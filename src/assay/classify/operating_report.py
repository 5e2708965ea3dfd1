"""The report's clinical operating point and calibration sections (HTML pieces)."""

from __future__ import annotations

from typing import Any

from assay.classify.models import MODELS
from assay.classify.names import UNDEFINED
from assay.classify.operating_point import HELD_OUT_METRICS
from assay.obs import html


def _ci(s: dict[str, Any]) -> str:
    return f"{s['mean']:.4f}<br><small>[{s['ci_low']:.4f}, {s['ci_high']:.4f}]</small>"


def _misses(entry: dict[str, Any]) -> str:
    missed, positives = entry["missed_positives_per_repeat"], entry["positives_per_repeat"]
    return ", ".join(f"{m}/{p}" for m, p in zip(missed, positives, strict=True))


def clinical_paragraph(metrics: dict[str, Any]) -> str:
    """Which threshold is served, its held-out estimate, and the apparent figure, each named."""
    clinical = metrics["clinical_threshold"]
    held, seen = clinical["held_out"], clinical["apparent"]
    label = html.escape(MODELS[metrics["selected_model"]].label)
    return (
        f"<p>Selected model: <b>{label}</b>. Served threshold <b>{clinical['threshold']:.4f}</b> "
        f"on calibrated P(malignant), target sensitivity {clinical['target_sensitivity']}: "
        f"{html.escape(clinical['source'])}.</p>"
        f"<p><b>Held-out estimate</b> of this rule (threshold chosen inside each outer training "
        f"split from its inner out-of-fold predictions, scored on the outer fold; mean and 95% CI "
        f"over the outer folds): sensitivity {held['sensitivity']['mean']:.4f} "
        f"[{held['sensitivity']['ci_low']:.4f}, {held['sensitivity']['ci_high']:.4f}], "
        f"specificity {held['specificity']['mean']:.4f} "
        f"[{held['specificity']['ci_low']:.4f}, {held['specificity']['ci_high']:.4f}]; missed "
        f"malignant per repeat {_misses(held)}.</p>"
        f"<p><i>Apparent</i> (threshold {seen['threshold']:.4f} chosen on the pooled out-of-fold "
        f"predictions and scored on them, so it meets the target by construction): sensitivity "
        f"{seen['sensitivity']:.4f}, specificity {seen['specificity']:.4f} (vs "
        f"{seen['specificity_at_0_5']:.4f} at 0.5).</p>"
    )


def operating_point_table(metrics: dict[str, Any]) -> str:
    """Held-out figures at the clinical threshold rule, every model."""
    rows = []
    for key, entry in metrics["operating_point"]["models"].items():
        mark = " *" if key == metrics["selected_model"] else ""
        band = entry["threshold_range"]
        rows.append(
            [
                html.escape(MODELS[key].label + mark),
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
    return html.table(header, rows)


def calibration_table(metrics: dict[str, Any]) -> str:
    """Calibration intercept, slope and Brier of the held-out rows, before and after."""
    rows = []
    for key, entry in metrics["calibration"]["models"].items():
        mark = " *" if key == metrics["selected_model"] else ""
        before, after = entry["before"], entry["after"]
        rows.append(
            [
                html.escape(MODELS[key].label + mark),
                *[
                    html.cell(value, 4, nan=UNDEFINED)
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
    return html.table(header, rows)


def calibration_intro(metrics: dict[str, Any]) -> str:
    section = metrics["calibration"]
    return (
        f"<p>{html.escape(section['description'])} Calibration line: "
        f"{html.escape(section['slope_definition'])}. Pooled held-out rows (each patient once per "
        "repeat); per-fold Brier: mean and 95% CI over the outer folds. * = selected model.</p>"
    )
