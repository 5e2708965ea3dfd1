"""metrics.json content and the self-contained report.html (figures embedded as base64 PNGs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sklearn.metrics import roc_curve

from assay.classify import (
    operating_point,
    operating_report,
    plots,
    report_sections,
    report_summary,
    tables,
)
from assay.classify.analysis import build_analysis, pooled_label
from assay.classify.evaluate import leaderboard, pooled_oof, summarize_all
from assay.classify.metrics import METRIC_NAMES, score_all
from assay.classify.models import MODELS
from assay.classify.names import CUTOFF_METRICS, UNDEFINED, UNDEFINED_NOTE
from assay.obs import html

if TYPE_CHECKING:
    import pandas as pd

SINGLE_SPLIT_LABEL = (
    "Literature single split (the quoted notebook's stratified 80/20 split, random_state=42 on "
    "scikit-learn's encoding), for comparison with the widely quoted 'AdaBoost 99.12%' -- ONE "
    "split, not a cross-validated estimate"
)


def build_metrics(
    cv_dir: Path, summary: dict[str, Any], vif: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every number of the run, machine-readable, plus the frames the figures need."""
    folds = tables.read_table(cv_dir, tables.FOLDS_CSV)
    latency = tables.read_table(cv_dir, tables.LATENCY_CSV)
    oof = tables.read_table(cv_dir, tables.OOF_CSV)
    single = tables.read_table(cv_dir, tables.SINGLE_SPLIT_CSV)
    metric = summary["config"]["selection_metric"]
    summaries = summarize_all(folds, latency)
    order = leaderboard(summaries, metric)
    selected = summary["selected_model"]
    clinical = summary["clinical_threshold"]
    op_table, calibrated_oof = operating_point.read_tables(cv_dir)
    op_sections = operating_point.summaries(op_table, calibrated_oof, order)

    y, p = pooled_oof(oof, selected)
    fpr, tpr, thr = roc_curve(y, p)
    metrics = {
        "schema_version": 1,
        "protocol": summary["protocol"],
        "config": summary["config"],
        "data": summary["data"],
        "selection_metric": metric,
        "leaderboard": [
            {"model": k, "label": MODELS[k].label, "mean": summaries[k]["cv"][metric]["mean"]}
            for k in order
        ],
        "selected_model": selected,
        "undefined_metrics": UNDEFINED_NOTE,
        "models": summaries,
        "pooled_oof": {k: score_all(*pooled_oof(oof, k)) for k in order},
        "clinical_threshold": clinical,
        **op_sections,
        "roc_curve": {
            "fpr": [float(v) for v in fpr],
            "tpr": [float(v) for v in tpr],
            "thresholds": [min(float(v), 1.0) for v in thr],
        },
        "confusion_matrix": {
            "labels": ["benign", "malignant"],
            "matrix": operating_point.held_out_confusion(op_table, selected),
            "threshold_rule": "per outer fold: chosen on its own training split (held-out)",
            "note": pooled_label(summary["config"]["repeats"], summary["data"]["rows"])
            + "; each outer fold at the threshold chosen on its own training split",
        },
        "single_split": {
            "label": SINGLE_SPLIT_LABEL,
            "models": _single_split(single),
        },
        "final_model": summary["final_model"],
        "vif": vif.to_dict(orient="records") if not vif.empty else [],
        "timings": summary["timings"],
    }
    served_oof = calibrated_oof.drop(columns="p_raw").rename(
        columns={"p_calibrated": "p_malignant"}
    )  # the decision curve is about the probability the server returns
    tables_for_analysis = {"folds": folds, "oof": served_oof, "single": single}
    metrics.update(build_analysis(tables_for_analysis, summary, summaries))
    metrics["summary"] = report_summary.summary_facts(metrics)
    metrics["scalar_metrics"] = {
        **_scalars(summaries[selected], metrics["single_split"]),
        **operating_point.scalar_metrics(clinical, op_sections["calibration"]["models"][selected]),
    }
    frames = {
        "oof": oof,
        "calibrated_oof": calibrated_oof,
        "order": order,
        "summaries": summaries,
        "vif": vif,
    }
    return metrics, frames


def _single_split(single: pd.DataFrame) -> dict[str, Any]:
    if single.empty:
        return {}
    out: dict[str, Any] = {}
    for _, row in single.iterrows():
        out[str(row["model"])] = {
            **{m: float(row[m]) for m in METRIC_NAMES},
            "n_train": int(row["n_train"]),
            "n_test": int(row["n_test"]),
            "best_params": json.loads(row["best_params"]),
        }
    return out


def _scalars(selected: dict[str, Any], single: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, s in selected["cv"].items():
        out[f"{name}_mean"] = s["mean"]
        out[f"{name}_std"] = s["std"]
        out[f"{name}_ci_low"] = s["ci_low"]
        out[f"{name}_ci_high"] = s["ci_high"]
    out["predict_latency_ms_p50"] = selected["predict_latency_ms_per_row"]["p50"]
    out["predict_latency_ms_p95"] = selected["predict_latency_ms_per_row"]["p95"]
    return out


# ---------------------------------------------------------------- HTML

FIGURE_ALTS = {
    "leaderboard": "leaderboard",
    "roc": "ROC curves",
    "confusion": "confusion matrix",
    "calibration": "reliability before vs after calibration",
    "pairwise": "pairwise adjusted p-values",
    "decision_curve": "decision curve",
}


def _summary_cell(s: dict[str, Any], folds: int) -> html.Stacked | str:
    """mean ± std [CI]; 'undefined' where no fold defines the metric, and how many did where
    only some did (names.UNDEFINED_NOTE)."""
    if s["n"] == 0:
        return UNDEFINED
    ci = f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
    if s["n"] < folds:
        ci = f"{ci} {s['n']} of {folds} folds"
    return html.Stacked(f"{s['mean']:.4f} ± {s['std']:.4f}", ci)


def _leaderboard_table(metrics: dict[str, Any]) -> html.Table:
    folds = metrics["config"]["folds"] * metrics["config"]["repeats"]
    rows = []
    for entry in metrics["leaderboard"]:
        key = entry["model"]
        m = metrics["models"][key]
        mark = " *" if key == metrics["selected_model"] else ""
        row: list[Any] = [m["label"] + mark]
        for name in METRIC_NAMES:
            row.append(_summary_cell(m["cv"][name], folds))
        row.append(f"{m['fit_seconds']['mean']:.3f}")
        lat = m["predict_latency_ms_per_row"]
        row.append(f"{lat['p50']:.2f} / {lat['p95']:.2f}")
        rows.append(row)
    header = ["model", *[_at_cutoff(m) for m in METRIC_NAMES], "fit s", "latency ms p50/p95"]
    return html.table(header, rows, 4)


def _at_cutoff(metric: str) -> str:
    return f"{metric} @0.5" if metric in CUTOFF_METRICS else metric


def _images(out_dir: Path, metrics: dict[str, Any], frames: dict[str, Any]) -> dict[str, bytes]:
    """Draw the PNGs into out_dir; their bytes by name."""
    selected, order, oof = metrics["selected_model"], frames["order"], frames["oof"]
    reliability_keys = list(dict.fromkeys([selected, *order[:3]]))
    confusion = metrics["confusion_matrix"]
    return {
        "leaderboard": plots.leaderboard(
            frames["summaries"], order, metrics["selection_metric"], out_dir / "leaderboard.png"
        ),
        "roc": plots.roc_curves(oof, order, selected, out_dir / "roc_curves.png"),
        "confusion": plots.confusion_matrix(
            confusion["matrix"],
            metrics["clinical_threshold"]["threshold"],
            out_dir / "confusion_matrix.png",
            confusion["note"],
        ),
        "calibration": plots.calibration(
            frames["calibrated_oof"], reliability_keys, out_dir / "calibration.png"
        ),
        "pairwise": plots.pairwise_heatmap(
            metrics["selection"], order, out_dir / "pairwise_pvalues.png"
        ),
        "decision_curve": plots.decision_curve(
            metrics["decision_curve"], out_dir / "decision_curve.png"
        ),
    }


def render_html(metrics: dict[str, Any], images: dict[str, bytes]) -> str:
    """The report page from metrics.json's content and the drawn figures."""
    final = metrics["final_model"]
    vif_rows = [[r["feature"], r["vif"]] for r in metrics["vif"]]
    return html.render(
        "assay.classify",
        "report.html.j2",
        metrics=metrics,
        summary_lines=report_summary.summary_lines(metrics["summary"]),
        summary_status="met" if metrics["summary"]["sensitivity_target"] == "met" else "notmet",
        figures={name: html.Figure(alt, images[name]) for name, alt in FIGURE_ALTS.items()},
        leaderboard=_leaderboard_table(metrics),
        selection=report_sections.selection_view(metrics["selection"]),
        clinical=operating_report.clinical_view(metrics),
        operating_point=operating_report.operating_point_table(metrics),
        decision_curve=report_sections.decision_curve_table(metrics["decision_curve"]),
        calibration=operating_report.calibration_table(metrics),
        final_label=MODELS[final["estimator"]].label,
        final_params=json.dumps(final["best_params"]),
        features=report_sections.features_view(metrics["features"]),
        literature=report_sections.literature_view(metrics["literature_split"]),
        vif=html.table(["feature", "VIF"], vif_rows, 4, nan=UNDEFINED) if vif_rows else None,
        protocol=json.dumps(metrics["protocol"], indent=2),
        undefined_note=UNDEFINED_NOTE,
    )


def write_report(out_dir: Path, metrics: dict[str, Any], frames: dict[str, Any]) -> Path:
    """Write the PNGs and report.html (self-contained: no external files or URLs)."""
    page = render_html(metrics, _images(out_dir, metrics, frames))
    path = out_dir / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
