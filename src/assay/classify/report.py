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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return html.table(header, [[html.cell(c, 4, nan=UNDEFINED) for c in r] for r in rows])


def _summary_cell(s: dict[str, Any], folds: int) -> str:
    """mean ± std [CI]; 'undefined' where no fold defines the metric, and how many did where
    only some did (names.UNDEFINED_NOTE)."""
    if s["n"] == 0:
        return UNDEFINED
    cell = (
        f"{s['mean']:.4f} ± {s['std']:.4f}<br><small>[{s['ci_low']:.4f}, "
        f"{s['ci_high']:.4f}]</small>"
    )
    return cell if s["n"] >= folds else f"{cell}<br><small>{s['n']} of {folds} folds</small>"


def _leaderboard_table(metrics: dict[str, Any]) -> str:
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
    return html.table(header, [[html.escape(r[0]), *r[1:]] for r in rows])


def _at_cutoff(metric: str) -> str:
    return f"{metric} @0.5" if metric in CUTOFF_METRICS else metric


def write_report(out_dir: Path, metrics: dict[str, Any], frames: dict[str, Any]) -> Path:
    """Write the PNGs and report.html (self-contained: no external files or URLs)."""
    selected = metrics["selected_model"]
    order = frames["order"]
    oof = frames["oof"]
    threshold = metrics["clinical_threshold"]["threshold"]
    reliability_keys = list(dict.fromkeys([selected, *order[:3]]))
    images = {
        "leaderboard": plots.leaderboard(
            frames["summaries"], order, metrics["selection_metric"], out_dir / "leaderboard.png"
        ),
        "roc": plots.roc_curves(oof, order, selected, out_dir / "roc_curves.png"),
        "confusion": plots.confusion_matrix(
            metrics["confusion_matrix"]["matrix"],
            threshold,
            out_dir / "confusion_matrix.png",
            metrics["confusion_matrix"]["note"],
        ),
        "calibration": plots.calibration(
            frames["calibrated_oof"], reliability_keys, out_dir / "calibration.png"
        ),
        **_analysis_images(out_dir, metrics, order),
    }
    final = metrics["final_model"]
    vif_rows = [[r["feature"], r["vif"]] for r in metrics["vif"]]
    sections = [
        "<h1>assay: WDBC classifier report</h1>",
        report_summary.summary_box(metrics["summary"]),
        _data_line(metrics),
        f"<p>{html.escape(metrics['protocol']['text'])}</p>",
        "<h2>Leaderboard (repeated stratified CV, nested tuning)</h2>",
        "<p>mean ± std, [95% CI] over outer folds. <b>Columns marked @0.5 are at the 0.5 "
        "cut-off of the uncalibrated classifier, not at the served threshold</b> (see Clinical "
        "operating threshold); brier is of the uncalibrated probabilities. "
        f"Undefined metrics: {html.escape(UNDEFINED_NOTE)}. "
        f"CI: {html.escape(metrics['protocol']['metrics']['ci'])}. * = selected model.</p>",
        _leaderboard_table(metrics),
        html.png_img(images["leaderboard"], "leaderboard"),
        *report_sections.selection_section(metrics["selection"], images["pairwise"]),
        "<h2>ROC curves</h2>",
        html.png_img(images["roc"], "ROC curves"),
        "<h2>Clinical operating threshold</h2>",
        operating_report.clinical_paragraph(metrics),
        operating_report.operating_point_table(metrics),
        f"<p>Confusion matrix: {html.escape(metrics['confusion_matrix']['note'])}.</p>",
        html.png_img(images["confusion"], "confusion matrix"),
        *report_sections.decision_curve_section(
            metrics["decision_curve"], images["decision_curve"]
        ),
        "<h2>Calibration</h2>",
        operating_report.calibration_intro(metrics),
        operating_report.calibration_table(metrics),
        html.png_img(images["calibration"], "reliability before vs after calibration"),
        "<h2>Final model</h2>",
        f"<p>{html.escape(MODELS[final['estimator']].label)} refitted on all rows with "
        f"parameters <code>{html.escape(json.dumps(final['best_params']))}</code>.</p>",
        "<p>Selected features (RFE): "
        + ", ".join(html.escape(f) for f in final["selected_features"])
        + "</p>",
        *report_sections.features_section(metrics["features"]),
        *report_sections.literature_section(
            metrics["literature_split"], metrics["single_split"]["label"]
        ),
        "<h2>Variance inflation factors (analysis only, all rows)</h2>",
        _table(["feature", "VIF"], vif_rows) if vif_rows else "<p>Not available.</p>",
        "<h2>Protocol</h2>",
        f"<pre>{html.escape(json.dumps(metrics['protocol'], indent=2))}</pre>",
    ]
    page = html.page("assay classifier report", _CSS + report_summary.SUMMARY_CSS, sections)
    path = out_dir / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def _analysis_images(out_dir: Path, metrics: dict[str, Any], order: list[str]) -> dict[str, bytes]:
    return {
        "pairwise": plots.pairwise_heatmap(
            metrics["selection"], order, out_dir / "pairwise_pvalues.png"
        ),
        "decision_curve": plots.decision_curve(
            metrics["decision_curve"], out_dir / "decision_curve.png"
        ),
    }


def _data_line(metrics: dict[str, Any]) -> str:
    d = metrics["data"]
    return (
        f"<p>Data: {html.escape(str(d['source']))} - {d['rows']} rows ({d['malignant']} "
        f"malignant, {d['benign']} benign), {html.escape(d['data_hash'])}.</p>"
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1250px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3} td:first-child{text-align:left}
img{max-width:100%;display:block;margin:1em 0}
pre{background:#f7f7f7;padding:1em;font-size:11px;overflow:auto}
"""
