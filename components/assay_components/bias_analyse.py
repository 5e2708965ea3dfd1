"""Bias study, step 3: per-passage aggregates and inter-rater agreement."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_analyse(
    loaded: Input[Artifact],
    rated: Input[Artifact],
    n_boot: int,
    seed: int,
    analysis: Output[Artifact],
    agreement_metrics: Output[Metrics],
):
    """Write analysis/{passage_stats.parquet, agreement.json}: Krippendorff's alpha at the
    scale's level with a bootstrap 95% CI, per-rater and pairwise agreement, Friedman test."""
    from pathlib import Path

    from assay.bias.steps import agreement_metrics as metrics_of
    from assay.bias.steps import analyse_step

    agreement = analyse_step(
        Path(loaded.path), Path(rated.path), Path(analysis.path), n_boot=n_boot, seed=seed
    )
    for name, value in metrics_of(agreement).items():
        agreement_metrics.log_metric(name, value)
