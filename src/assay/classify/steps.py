"""The classifier study as steps, one per training-pipeline component (folder in, folder out).

load data -> VIF -> train (CV on Ray, selection, threshold, refit) -> evaluate -> register

Each KFP component in ``components/`` imports a steps module inside its body and calls exactly one
function: this one for train and evaluate; ``assay.classify.data_steps`` (load, VIF) and
``assay.classify.registration`` (register) for the light steps, which so spare their subprocesses
the model-training and plotting stack (this module re-exports them). An artifact is a folder or
file (``.path``) with a ``.metadata`` dict; the evaluation also logs to metrics artifacts
(``log_metric``/``log_roc_curve``/``log_confusion_matrix``). They are duck-typed, so the steps run
in unit tests without kfp.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

from pydantic import ValidationError

from assay.classify.config import TrainConfig
from assay.classify.data_steps import (
    ArtifactLike,
    impute_mode,
    load_data_step,
    vif_step,
)
from assay.classify.names import AT_CUTOFF_NOTE, CUTOFF_METRICS
from assay.classify.registration import register_step
from assay.classify.report_summary import summary_lines
from assay.classify.stages import run_evaluation, run_training
from assay.config import invalid_option
from assay.obs.logging import get_logger

log = get_logger(__name__)

MAX_ROC_POINTS = 200

__all__ = [
    "ArtifactLike",
    "evaluate_step",
    "impute_mode",
    "load_data_step",
    "register_step",
    "train_step",
    "vif_step",
]


class MetricsLike(ArtifactLike, Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


class ClassificationMetricsLike(ArtifactLike, Protocol):
    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None: ...

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None: ...


# -- training -------------------------------------------------------------------------------
class TrainOptions(TypedDict):
    """The training pipeline's parameters that make the TrainConfig (flat, KFP-friendly)."""

    k_features: int
    folds: int
    repeats: int
    tuning_iter: int
    seed: int
    models: str
    ray_cpus: int
    target_sensitivity: float
    model_name: str


def train_step(
    dataset: ArtifactLike,
    training: ArtifactLike,
    model: ArtifactLike,
    **options: Unpack[TrainOptions],
) -> dict[str, Any]:
    """Cross-validate, select, threshold and refit (on Ray); expose the model folder as Model."""
    config = train_config(**options)
    out_dir = Path(training.path)
    source = dataset.metadata.get("source") if dataset.metadata else None
    summary = run_training(Path(dataset.path), config, out_dir, source=source)
    shutil.copytree(out_dir / "model", Path(model.path), dirs_exist_ok=True)
    card = json.loads((Path(model.path) / "model-card.json").read_text())
    model.metadata.update(
        {
            "framework": "scikit-learn",
            "estimator": card.get("estimator"),
            "threshold": card.get("threshold"),
            "data_hash": card.get("data_hash"),
        }
    )
    return dict(summary)


def train_config(**options: Unpack[TrainOptions]) -> TrainConfig:
    """Pipeline parameters (flat, KFP-friendly) -> TrainConfig. ``models=""``: all; ``ray_cpus=0``:
    all cores. A bad value is a UsageError of one sentence."""
    try:
        return TrainConfig.from_options(dict(options))
    except ValidationError as exc:
        raise invalid_option(exc) from exc


# -- evaluation -----------------------------------------------------------------------------
def evaluate_step(
    training: ArtifactLike,
    vif_table: ArtifactLike,
    evaluation: ArtifactLike,
    metrics: MetricsLike,
    classification_metrics: ClassificationMetricsLike,
    report: ArtifactLike,
    summary: ArtifactLike,
) -> dict[str, Any]:
    """Build metrics.json/report.html/PNGs and log them as KFP metrics, ROC, confusion matrix."""
    out_dir = Path(evaluation.path)
    result = run_evaluation(Path(training.path), Path(vif_table.path) / "vif.csv", out_dir)
    log_evaluation(result, metrics, classification_metrics)
    shutil.copyfile(out_dir / "report.html", report.path)
    Path(summary.path).write_text(markdown_summary(result))
    return dict(result)


def log_evaluation(
    result: dict[str, Any], metrics: MetricsLike, classification_metrics: ClassificationMetricsLike
) -> None:
    """Scalars to Metrics; ROC curve and confusion matrix to ClassificationMetrics."""
    for name, value in sorted(result.get("scalar_metrics", {}).items()):
        if isinstance(value, int | float) and math.isfinite(value):
            metrics.log_metric(name, float(value))
    roc = result.get("roc_curve")
    if roc:
        fpr, tpr, thresholds = thin_roc(roc["fpr"], roc["tpr"], roc["thresholds"])
        classification_metrics.log_roc_curve(fpr, tpr, thresholds)
    confusion = result.get("confusion_matrix")
    if confusion:
        matrix = [[int(v) for v in row] for row in confusion["matrix"]]
        classification_metrics.log_confusion_matrix(list(confusion["labels"]), matrix)


def thin_roc(
    fpr: list[float], tpr: list[float], thresholds: list[float], max_points: int = MAX_ROC_POINTS
) -> tuple[list[float], list[float], list[float]]:
    """Finite thresholds clipped to [0, 1] (sklearn starts at +inf) and at most ``max_points``."""
    n = len(fpr)
    if not n == len(tpr) == len(thresholds):
        raise ValueError("fpr, tpr and thresholds must have the same length")
    step = max(1, math.ceil(n / max_points))
    keep = sorted({*range(0, n, step), n - 1}) if n else []
    clipped = [min(1.0, max(0.0, float(t))) if math.isfinite(t) else 1.0 for t in thresholds]
    return [float(fpr[i]) for i in keep], [float(tpr[i]) for i in keep], [clipped[i] for i in keep]


def markdown_summary(result: dict[str, Any]) -> str:
    """A short Markdown card for the KFP dashboard: mean [95% CI] per metric, then the rest."""
    scalars: dict[str, Any] = result.get("scalar_metrics", {})
    lines = [f"# Selected model: `{result.get('selected_model', '?')}`", ""]
    if "summary" in result:
        lines += [f"- {line}" for line in summary_lines(result["summary"])] + [""]
    lines += [f"Metrics note: {AT_CUTOFF_NOTE}.", ""]
    lines += ["| metric | mean | 95% CI |", "|---|---|---|"]
    shown: set[str] = set()
    for key in sorted(scalars):
        if key.endswith("_mean"):
            base = key[: -len("_mean")]
            low, high = scalars.get(f"{base}_ci_low"), scalars.get(f"{base}_ci_high")
            ci = f"{_num(low)} - {_num(high)}" if low is not None and high is not None else ""
            shown_as = f"{base} @0.5" if base in CUTOFF_METRICS else base
            lines.append(f"| {shown_as} | {_num(scalars[key])} | {ci} |")
            shown |= {key, f"{base}_ci_low", f"{base}_ci_high", f"{base}_std"}
    rest = [key for key in sorted(scalars) if key not in shown]
    if rest:
        lines += ["", "| value | |", "|---|---|"]
        lines += [f"| {key} | {_num(scalars[key])} |" for key in rest]
    confusion = result.get("confusion_matrix")
    if confusion:
        (tn, fp), (fn, tp) = confusion["matrix"]
        lines += [
            "",
            "Held-out confusion matrix (each outer fold at the clinical threshold chosen on "
            f"its training split): TN {tn}, FP {fp}, FN {fn}, TP {tp}.",
        ]
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)
