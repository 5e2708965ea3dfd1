"""Bias study, step 5: assemble the run folder and the self-contained HTML report."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Output

from components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_report(
    loaded: Input[Artifact],
    rated: Input[Artifact],
    analysis: Input[Artifact],
    posterior: Input[Artifact],
    study: Output[Artifact],
    report: Output[HTML],
):
    """Write study/ (every artifact of the run + report.html + figures/) and the report."""
    import shutil
    from pathlib import Path

    from assay.bias.steps import report_step

    html = report_step(
        Path(loaded.path),
        Path(rated.path),
        Path(analysis.path),
        Path(posterior.path),
        Path(study.path),
    )
    shutil.copyfile(html, report.path)
