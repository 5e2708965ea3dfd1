"""report.html sections for the model comparison, the literature split, the decision curve and
the features, from the ``analysis`` blocks of metrics.json: what templates/sections.html.j2
shows of them."""

from __future__ import annotations

from typing import Any

from assay.classify.decision_curve import TABLE_THRESHOLDS
from assay.classify.models import MODELS
from assay.classify.names import UNDEFINED
from assay.obs import html


def _label(key: str) -> str:
    return MODELS[key].label if key in MODELS else key


def selection_view(selection: dict[str, Any]) -> dict[str, Any]:
    metric, best = selection["metric"], selection["best_by_mean"]
    tied = selection["indistinguishable"]
    against = selection["p_holm_vs_best"]
    vs_best = [
        [MODELS[k].label, selection["mean"][k], against.get(k), "no" if k in tied else "yes"]
        for k in sorted(against, key=lambda k: -selection["mean"][k])
    ]
    compared = list(dict.fromkeys(r["metric"] for r in selection["pairwise"]))
    pairs = [
        [
            f"{MODELS[r['a']].label} vs {MODELS[r['b']].label}",
            *[
                f"{row['mean_difference']:+.4f} (p={row['p']:.3f}, Holm {row['p_holm']:.3f})"
                for m in compared
                for row in selection["pairwise"]
                if row["metric"] == m and (row["a"], row["b"]) == (r["a"], r["b"])
            ],
        ]
        for r in selection["pairwise"]
        if r["metric"] == metric
    ]
    vs_best_header = [
        f"model (vs {MODELS[best].label})",
        f"mean {metric}",
        "Holm p",
        "distinguishable at this n",
    ]
    return {
        "metric": metric,
        "rule": selection["rule"],
        "test": selection["test"],
        "alpha": selection["alpha"],
        "simplicity_order": [
            f"{_label(s['model'])} ({s['why']})" for s in selection["simplicity_order"]
        ],
        "best": _label(best),
        "tied": ", ".join(_label(k) for k in tied) or "none",
        "selected": _label(selection["selected"]),
        "vs_best": html.table(vs_best_header, vs_best, 4, nan=UNDEFINED),
        "pairs": html.table(["pair", *compared], pairs, 4),
    }


def literature_view(block: dict[str, Any]) -> dict[str, Any] | None:
    if not block:
        return None
    quoted = block["quoted"]
    rows = [
        [
            MODELS[k].label,
            m["accuracy"],
            f"{m['correct']}/{m['n_test']}",
            f"[{m['clopper_pearson_95'][0]:.3f}, {m['clopper_pearson_95'][1]:.3f}]",
            f"{m['cv_accuracy']['mean']:.4f} [{m['cv_accuracy']['ci_low']:.3f}, "
            f"{m['cv_accuracy']['ci_high']:.3f}]",
            m["share_of_outer_folds_at_or_above"],
        ]
        for k, m in block["models"].items()
    ]
    header = [
        "model",
        "accuracy (this split)",
        "correct",
        "Clopper-Pearson 95%",
        "CV accuracy mean [95% CI]",
        "share of outer folds >= it",
    ]
    return {
        "split": block["split"],
        "n_train": next(iter(block["models"].values()))["n_train"],
        "quoted": quoted,
        "interval": quoted["clopper_pearson_95"],
        "share": _share_text(quoted["share_of_outer_folds_at_or_above"]),
        "table": html.table(header, rows, 4, nan=UNDEFINED),
    }


def _share_text(share: float | None) -> str:
    """A share as a percentage; a missing one (AdaBoost not run) says so."""
    if share is None or share != share:
        return "(AdaBoost not run:) none"
    return f"{share:.0%}"


def decision_curve_table(curves: dict[str, Any]) -> html.Table:
    pts = curves["thresholds"]
    columns = [pts.index(t) for t in TABLE_THRESHOLDS if t in pts]
    rows = [["treat all", *[curves["treat_all"][i] for i in columns]]]
    rows += [
        [MODELS[k].label, *[c["net_benefit"][i] for i in columns]]
        for k, c in curves["models"].items()
    ]
    header = ["net benefit at pt", *[f"{pts[i]:.2f}" for i in columns]]
    return html.table(header, rows, 4, nan=UNDEFINED)


def features_view(features: dict[str, Any]) -> dict[str, Any]:
    rfe = features["rfe_frequency"]
    ranked = sorted(rfe["frequency"].items(), key=lambda kv: -kv[1])  # JSON may sort by name
    freq = [[name, share] for name, share in ranked if share > 0]
    perm = features.get("permutation_importance") or {}
    importance = None
    if perm:
        rows = [[f["feature"], f["mean"], f["std"]] for f in perm["features"]]
        importance = {
            "label": perm["label"],
            "roc_auc": perm["reference_roc_auc_apparent"],
            "table": html.table(["feature", "mean drop in ROC-AUC", "std"], rows, 4, nan=UNDEFINED),
        }
    return {
        "rfe": rfe,
        "frequency": html.table(["feature", "share of folds"], freq, 2, nan=UNDEFINED),
        "importance": importance,
    }
