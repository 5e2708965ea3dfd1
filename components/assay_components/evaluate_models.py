"""Leaderboard, clinical metrics, plots and the self-contained HTML report."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def evaluate_models(
    training: Input[Artifact],
    vif_table: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
):
    """Write evaluation/{metrics.json, report.html, *.png}; log the selected model's scalar
    metrics, its out-of-fold ROC curve and the confusion matrix at the clinical threshold."""
    from assay.classify.steps import evaluate_step

    evaluate_step(training, vif_table, evaluation, metrics, classification_metrics, report, summary)
