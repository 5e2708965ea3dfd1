"""The answer first: the facts on top of the classifier report and of summary.md.

``summary_facts`` reads them from metrics.json's own blocks (selection, clinical_threshold), so
the box can only say what metrics.json says; metrics.json keeps them under ``summary``.
"""

from __future__ import annotations

from typing import Any

from assay.classify.models import MODELS


def _interval(stats: dict[str, Any]) -> dict[str, float]:
    return {k: float(stats[k]) for k in ("mean", "ci_low", "ci_high")}


def selection_reason(selection: dict[str, Any]) -> str:
    metric, best, chosen = selection["metric"], selection["best_by_mean"], selection["selected"]
    if chosen == best:
        return f"highest mean {metric} over the outer folds"
    p = selection["p_holm_vs_best"].get(chosen)
    shown = f"Holm p = {p:.2f}" if p is not None else "Holm p"
    return (
        f"the simplest model not distinguishable at this sample size from {MODELS[best].label} "
        f"(highest mean {metric}; {shown} >= {selection['alpha']}); no equivalence margin was "
        "tested, so this is not a claim that the two are equivalent"
    )


def summary_facts(metrics: dict[str, Any]) -> dict[str, Any]:
    """Selected model and why, its held-out sensitivity/specificity at the served threshold's
    rule against the target ("met" when the held-out mean reaches it)."""
    selection, clinical = metrics["selection"], metrics["clinical_threshold"]
    held, target = clinical["held_out"], float(clinical["target_sensitivity"])
    chosen = metrics["selected_model"]
    sensitivity = _interval(held["sensitivity"])
    return {
        "selected_model": chosen,
        "selected_label": MODELS[chosen].label,
        "why": selection_reason(selection),
        "selection_metric": selection["metric"],
        "selection_metric_cv": _interval(metrics["models"][chosen]["cv"][selection["metric"]]),
        "served_threshold": float(clinical["threshold"]),
        "target_sensitivity": target,
        "sensitivity_heldout": sensitivity,
        "specificity_heldout": _interval(held["specificity"]),
        "sensitivity_target": "met" if sensitivity["mean"] >= target else "not met",
        "missed_malignant_per_repeat": list(held["missed_positives_per_repeat"]),
        "malignant_per_repeat": list(held["positives_per_repeat"]),
    }


def _fmt(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.3f} [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"


def summary_lines(facts: dict[str, Any]) -> list[str]:
    """The summary as plain sentences (the HTML box and summary.md share them)."""
    target = facts["target_sensitivity"]
    missed = ", ".join(
        f"{m} of {p}"
        for m, p in zip(
            facts["missed_malignant_per_repeat"], facts["malignant_per_repeat"], strict=True
        )
    )
    return [
        f"Selected model: {facts['selected_label']} - {facts['why']}. Cross-validated "
        f"{facts['selection_metric']} {_fmt(facts['selection_metric_cv'])}.",
        f"Served threshold {facts['served_threshold']:.4f} on calibrated P(malignant), chosen "
        f"to reach sensitivity {target}.",
        f"Held-out sensitivity {_fmt(facts['sensitivity_heldout'])} against the target {target}: "
        f"{facts['sensitivity_target'].upper()} (mean over the outer folds, 95% CI). Malignant "
        f"cases missed per repeat: {missed}.",
        f"Held-out specificity {_fmt(facts['specificity_heldout'])} (no target).",
    ]
