"""Bias study, step 4: the PyMC hierarchical model of publisher effects."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_fit(
    loaded: Input[Artifact],
    rated: Input[Artifact],
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    rope: float,
    reference_publisher: str,
    posterior: Output[Artifact],
    fit_metrics: Output[Metrics],
) -> bool:
    """Write posterior/{posterior.nc, summary.json}; return whether the convergence
    diagnostics (R-hat <= 1.01, bulk/tail ESS, no divergences, BFMI) passed. fit_metrics:
    max R-hat, min bulk/tail ESS, divergences, each publisher's effect (mean, HDI)."""
    from pathlib import Path

    from assay.bias.steps import fit_metrics as metrics_of
    from assay.bias.steps import fit_step

    summary = fit_step(
        Path(loaded.path),
        Path(rated.path),
        Path(posterior.path),
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        rope=rope,
        reference_publisher=reference_publisher,
    )
    for name, value in metrics_of(summary).items():
        fit_metrics.log_metric(name, value)
    posterior.metadata["diagnostics_passed"] = summary["diagnostics"]["passed"]
    return bool(summary["diagnostics"]["passed"])
