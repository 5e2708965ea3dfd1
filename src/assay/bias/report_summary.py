"""The answer first: the summary on top of the bias report, and the headline estimates that the
summary, the table and the forest plot share.

Each publisher's headline is its first entry in ``summary.json`` ``verdicts`` (the estimate the
verdict is about, against the headline reference), never the average-rater effect beside it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

FAILURE_MEANINGS = {
    "parse_error": "the answer was not the requested JSON (a refusal or malformed output)",
}


def headline(effect: dict[str, Any]) -> dict[str, Any]:
    """The estimate the publisher's verdict is about."""
    return dict((effect.get("verdicts") or [effect])[0])


def headline_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per publisher: the headline estimate and verdict, the average-rater effect."""
    rows = []
    for effect in summary["publisher_effects"]:
        top = headline(effect)
        rows.append(
            {
                "publisher": effect["publisher"],
                "n_passages": effect["n_passages"],
                "raw_mean_rating": effect.get("raw_mean_rating"),
                "reference": top.get("reference", effect.get("verdict_reference", "")),
                "mean": top["mean"],
                "hdi_low": top["hdi_low"],
                "hdi_high": top["hdi_high"],
                "average_rater_effect": effect["mean"],
                "verdict": effect["verdict"],
            }
        )
    return rows


def failure_reasons(agreement: dict[str, Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in agreement.get("failures_by_publisher") or []:
        counts.update(row.get("by_reason") or {})
    return counts


def _interval(row: dict[str, Any]) -> str:
    return f"{row['mean']:+.3f} [{row['hdi_low']:+.3f}, {row['hdi_high']:+.3f}]"


def summary_lines(summary: dict[str, Any], agreement: dict[str, Any]) -> list[str]:
    diag = summary["diagnostics"]
    rows = headline_rows(summary)
    first = summary["publisher_effects"][0] if summary["publisher_effects"] else {}
    rope = (summary.get("verdicts") or {}).get("rope")
    lines = [
        "Convergence diagnostics "
        + ("passed." if diag["passed"] else "FAILED: do not trust the estimates below.")
    ]
    if first.get("verdict_reference"):
        rope_text = f", region of practical equivalence {rope}" if rope else ""
        lines.append(
            f"Verdicts are against {first['verdict_reference']} ({first['verdict_assumption']}"
            f"{rope_text}); difference and 95% HDI:"
        )
    lines += [f"{r['publisher']}: {r['verdict']}; {_interval(r)}" for r in rows]
    reasons = failure_reasons(agreement)
    failed = (
        "; failed ratings by reason: "
        + ", ".join(f"{k or 'no value'} {v}" for k, v in sorted(reasons.items()))
        if reasons
        else "; no failed ratings"
    )
    lines.append(
        f"Agreement: Krippendorff's alpha {agreement['alpha']:.3f} [{agreement['ci_low']:.3f}, "
        f"{agreement['ci_high']:.3f}] over {agreement['n_units']} passages and "
        f"{agreement['n_raters']} raters{failed}."
    )
    checks = (summary.get("predictive_checks") or {}).get("new_passages")
    if checks:
        flagged = ", ".join(checks["extreme"]) or "none"
        lines.append(
            f"New-passage predictive checks: {len(checks['extreme'])} of "
            f"{len(checks['statistics'])} statistics flagged ({flagged}); "
            f"{checks.get('multiplicity', 'no multiplicity correction')}."
        )
    return lines
