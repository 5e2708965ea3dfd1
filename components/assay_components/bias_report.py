"""Bias study, step 5: assemble the run folder and the self-contained HTML report."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_report(
    loaded: Input[Artifact],
    rated: Input[Artifact],
    analysis: Input[Artifact],
    posterior: Input[Artifact],
    study: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
):
    """Write study/ (every artifact of the run + report.html + figures/) and the report;
    metrics: the study's headline numbers beside it (Krippendorff's alpha + CI, max R-hat, min
    ESS, divergences, each publisher's effect with its HDI)."""
    import shutil
    from pathlib import Path

    from assay.bias.steps import report_step, study_metrics

    html = report_step(
        Path(loaded.path),
        Path(rated.path),
        Path(analysis.path),
        Path(posterior.path),
        Path(study.path),
    )
    shutil.copyfile(html, report.path)
    for name, value in study_metrics(Path(study.path)).items():
        metrics.log_metric(name, value)
