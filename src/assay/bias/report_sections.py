"""The bias report's sections on verdicts, new-passage predictive checks, textbooks, prior
sensitivity and agreement details (Kendall's W, truth notes, failures by publisher): figures
drawn from summary.json / agreement.json, and what templates/sections.html.j2 shows of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assay.obs import html

MAX_PPC_PANELS = 9


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def verdicts_view(summary: dict[str, Any]) -> dict[str, Any]:
    """Every publisher's verdict against every reference, with the assumption it rests on."""
    rule = summary.get("verdicts") or {}
    rows = [
        {"publisher": e["publisher"], **v}
        for e in summary["publisher_effects"]
        for v in e.get("verdicts", [])
    ]
    gold = rule.get("gold_passages") or {}
    gold_text = (
        f"Gold passages: {gold['n_gold_passages']}; the raters' shared bias estimated on them: "
        f"{gold['shared_rater_bias_mean']:+.3f} (95% HDI {gold['shared_rater_bias_hdi'][0]:+.3f}"
        f" to {gold['shared_rater_bias_hdi'][1]:+.3f})."
        if gold.get("available")
        else f"No gold-passage reference: {gold.get('why', 'not computed')}."
    )
    columns = [
        ("publisher", "publisher"),
        ("reference", "reference"),
        ("mean", "difference"),
        ("hdi_low", "HDI low"),
        ("hdi_high", "HDI high"),
        ("verdict", "verdict"),
        ("assumption", "assumption"),
    ]
    return {
        "rule": rule.get("rule", ""),
        "references": rule.get("references", []),
        "gold_text": gold_text,
        "table": html.record_table(rows, columns),
    }


def ppc_new_plot(summary: dict[str, Any], path: Path) -> bool:
    """Histograms of new-passage replicated statistics with the observed value; False when the
    summary has none."""
    checks = ((summary.get("predictive_checks") or {}).get("new_passages") or {}).get(
        "statistics", {}
    )
    names = [k for k in checks if not k.startswith("mean[")][:MAX_PPC_PANELS]
    if not names:
        return False
    plt = _pyplot()
    cols = 3
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        check = checks[name]
        colour = "#b2182b" if check["extreme"] else "#762a83"
        ax.hist(check["replicated_sample"], bins=30, color=colour, alpha=0.6)
        ax.axvline(check["observed"], color="black", lw=2)
        ax.set_title(f"{name}\np = {check['p_value']:.3f}", fontsize=9)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("New-passage posterior predictive checks (black: observed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def ppc_new_view(summary: dict[str, Any]) -> dict[str, Any] | None:
    checks = (summary.get("predictive_checks") or {}).get("new_passages")
    if not checks:
        return None
    rows = [{"statistic": k, **v} for k, v in checks["statistics"].items()]
    for row in rows:
        row["94%"] = f"{row['replicated_94'][0]:.3f} - {row['replicated_94'][1]:.3f}"
    columns = [
        ("statistic", "statistic"),
        ("observed", "observed"),
        ("replicated_mean", "replicated mean"),
        ("94%", "replicated 94%"),
        ("p_value", "p"),
        ("p_holm", "Holm p (two-sided)"),
        ("extreme", "flagged"),
    ]
    return {
        "replication": checks["replication"],
        "n_replications": checks["n_replications"],
        "p_value": checks["p_value"],
        "multiplicity": checks.get("multiplicity", "no multiplicity correction"),
        "flagged": ", ".join(checks["extreme"]) or "none",
        "table": html.record_table(rows, columns),
    }


def textbook_plot(summary: dict[str, Any], path: Path) -> bool:
    """Textbook effects (deviation from the publisher) with 95% HDIs, grouped by publisher."""
    rows = sorted(summary.get("textbook_effects") or [], key=lambda r: (r["publisher"], r["mean"]))
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.16 * len(rows) + 1.5))
    publishers = sorted({r["publisher"] for r in rows})
    colours = plt.get_cmap("tab10")
    for i, r in enumerate(rows):
        colour = colours(publishers.index(r["publisher"]) % 10)
        ax.plot([r["hdi_low"], r["hdi_high"]], [i, i], color=colour, lw=1.5)
        ax.plot(r["mean"], i, "o", color=colour, ms=3)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set_yticks([])
    ax.set_xlabel("textbook effect (deviation from its publisher's effect), 95% HDI")
    handles = [plt.Line2D([], [], color=colours(k % 10), label=p) for k, p in enumerate(publishers)]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def textbook_table(summary: dict[str, Any]) -> html.Table | None:
    rows = summary.get("textbook_effects") or []
    if not rows:
        return None
    columns = [
        ("textbook", "textbook"),
        ("publisher", "publisher"),
        ("n_passages", "passages"),
        ("mean", "effect"),
        ("hdi_low", "HDI low"),
        ("hdi_high", "HDI high"),
    ]
    return html.record_table(rows, columns)


def sensitivity_view(summary: dict[str, Any]) -> dict[str, Any] | None:
    sensitivity = summary.get("prior_sensitivity") or {}
    variants = sensitivity.get("variants") or []
    if not variants:
        return None
    rows = [
        {
            "prior": v["prior"],
            "scale_factor": v["scale_factor"],
            "pareto_k": v["pareto_k"],
            "reliable": v["reliable"],
            "max_abs_shift": v["max_abs_shift"],
            **{p["publisher"]: p["shift"] for p in v["publishers"]},
        }
        for v in variants
    ]
    publishers = [p["publisher"] for p in variants[0]["publishers"]]
    columns = [
        ("prior", "prior"),
        ("scale_factor", "scale x"),
        ("pareto_k", "Pareto k"),
        ("reliable", "reliable"),
        ("max_abs_shift", "max |shift|"),
        *[(p, p) for p in publishers],
    ]
    return {"method": sensitivity["method"], "table": html.record_table(rows, columns)}


def agreement_details_view(agreement: dict[str, Any]) -> dict[str, Any]:
    """Kendall's W, the notes on the truth column, failures by publisher."""
    kendall = agreement.get("kendall_w") or {}
    failures = [
        {
            **r,
            "reasons": ", ".join(f"{k}: {v}" for k, v in r["by_reason"].items()) or "-",
        }
        for r in agreement.get("failures_by_publisher") or []
    ]
    columns = [
        ("publisher", "publisher"),
        ("attempted", "attempted"),
        ("valid", "valid"),
        ("failed", "failed"),
        ("failed_share", "failed share"),
        ("reasons", "by reason"),
    ]
    return {
        "w": kendall.get("w"),
        "p_value": kendall.get("p_value"),
        "method": str(kendall.get("p_method", kendall.get("skipped", ""))),
        "truth_notes": list(agreement.get("truth_notes") or []),
        "failures": html.record_table(failures, columns),
    }
