"""report.html sections for the model comparison, the literature split, the decision curve and
the features (built from the ``analysis`` blocks of metrics.json)."""

from __future__ import annotations

from typing import Any

from assay.classify.decision_curve import TABLE_THRESHOLDS
from assay.classify.models import MODELS
from assay.classify.names import UNDEFINED
from assay.obs import html


def _label(key: str) -> str:
    return html.escape(MODELS[key].label) if key in MODELS else html.escape(key)


def _rows_table(header: list[str], rows: list[list[Any]], digits: int = 4) -> str:
    return html.table(header, [[html.cell(c, digits, nan=UNDEFINED) for c in r] for r in rows])


def selection_section(selection: dict[str, Any], image: bytes) -> list[str]:
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
    order = ", ".join(
        f"{_label(s['model'])} ({html.escape(s['why'])})" for s in selection["simplicity_order"]
    )
    return [
        "<h2>Model comparison and selection</h2>",
        f"<p><b>Rule:</b> {html.escape(selection['rule'])}.</p>",
        f"<p><b>Test:</b> {html.escape(selection['test'])}.</p>",
        "<p><b>Simplicity order</b> (simplest first, by what the fitted model holds): "
        f"{order}.</p>",
        f"<p>Best by mean {html.escape(metric)}: <b>{_label(best)}</b>. Not distinguishable "
        f"from it at this sample size (Holm-adjusted p &ge; {selection['alpha']}): "
        f"{', '.join(_label(k) for k in tied) or 'none'}. No equivalence margin was tested: a "
        "large p says the test could not tell the models apart with these folds, not that they "
        "are equivalent. Selected: "
        f"<b>{_label(selection['selected'])}</b>. The verdict rests on the outer folds as the "
        "reference sample and on the corrected test's assumption that fold differences are "
        "roughly normal with the Nadeau-Bengio correlation correction.</p>",
        _rows_table(
            [
                f"model (vs {MODELS[best].label})",
                f"mean {metric}",
                "Holm p",
                "distinguishable at this n",
            ],
            vs_best,
        ),
        html.png_img(image, "pairwise adjusted p-values"),
        "<details><summary>All pairs: mean difference a - b (raw p, Holm-adjusted p)</summary>",
        html.table(["pair", *compared], [[html.escape(str(c)) for c in r] for r in pairs]),
        "</details>",
    ]


def literature_section(block: dict[str, Any], label: str) -> list[str]:
    if not block:
        return [f"<h2>{html.escape(label)}</h2>", "<p>Not run.</p>"]
    quoted = block["quoted"]
    low, high = quoted["clopper_pearson_95"]
    n_train = next(iter(block["models"].values()))["n_train"]
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
    return [
        f"<h2>{html.escape(label)}</h2>",
        f"<p>Split: <code>{html.escape(block['split'])}</code>, reproduced exactly; the same "
        f"preprocessing (fitted on the split's {n_train} training rows) and nested tuning as "
        "every outer fold. Only the partition is the literature's: the models, the RFE ranking and "
        "the tuning are this protocol's.</p>",
        f"<p>The quoted 'AdaBoost 99.12%' is {quoted['correct']} of {quoted['n_test']} test rows "
        f"of ONE split: its exact 95% binomial (Clopper-Pearson) interval is [{low:.3f}, "
        f"{high:.3f}]; {_share_text(quoted['share_of_outer_folds_at_or_above'])} of AdaBoost's "
        "outer folds here (each about 114 rows) reach it. One split's accuracy is one draw from "
        "the fold-to-fold distribution, not an estimate of generalisation.</p>",
        _rows_table(
            [
                "model",
                "accuracy (this split)",
                "correct",
                "Clopper-Pearson 95%",
                "CV accuracy mean [95% CI]",
                "share of outer folds >= it",
            ],
            rows,
        ),
    ]


def _share_text(share: float | None) -> str:
    """A share as a percentage; a missing one (AdaBoost not run) says so."""
    if share is None or share != share:
        return "(AdaBoost not run:) none"
    return f"{share:.0%}"


def decision_curve_section(curves: dict[str, Any], image: bytes) -> list[str]:
    pts = curves["thresholds"]
    columns = [pts.index(t) for t in TABLE_THRESHOLDS if t in pts]
    rows = [["treat all", *[curves["treat_all"][i] for i in columns]]]
    rows += [
        [MODELS[k].label, *[c["net_benefit"][i] for i in columns]]
        for k, c in curves["models"].items()
    ]
    return [
        "<h2>Decision curve (net benefit)</h2>",
        f"<p>{html.escape(curves['method'])}. Treat none = 0. The probabilities are the models' "
        "out-of-fold outputs as they are; a model whose curve lies above both references at a "
        "threshold is worth using there.</p>",
        _rows_table(["net benefit at pt", *[f"{pts[i]:.2f}" for i in columns]], rows),
        html.png_img(image, "decision curve"),
    ]


def features_section(features: dict[str, Any]) -> list[str]:
    rfe = features["rfe_frequency"]
    ranked = sorted(rfe["frequency"].items(), key=lambda kv: -kv[1])  # JSON may sort by name
    freq = [[name, share] for name, share in ranked if share > 0]
    out = [
        "<h2>Features</h2>",
        f"<p>RFE selection over the {rfe['folds']} outer folds ({html.escape(rfe['note'])}): "
        f"{rfe['distinct_subsets']} distinct subsets; the most common one was chosen in "
        f"{rfe['most_common_subset_folds']} folds. Share of folds selecting each feature "
        "(features never selected omitted):</p>",
        _rows_table(["feature", "share of folds"], freq, digits=2),
    ]
    perm = features.get("permutation_importance") or {}
    if perm:
        rows = [[f["feature"], f["mean"], f["std"]] for f in perm["features"]]
        out += [
            f"<p>Permutation importance of the final model, <b>{html.escape(perm['label'])}</b> "
            f"(apparent ROC-AUC {perm['reference_roc_auc_apparent']:.4f}).</p>",
            _rows_table(["feature", "mean drop in ROC-AUC", "std"], rows),
        ]
    return out
