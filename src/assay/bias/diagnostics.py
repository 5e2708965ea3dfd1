"""Convergence diagnostics of a fitted posterior: R-hat, bulk/tail ESS, divergences, BFMI.

The diagnostics gate on every parameter but the per-passage effects (reported apart), against
fixed thresholds; a failed check is listed in ``Diagnostics.failures``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assay.errors import AssayError

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100
BFMI_MIN = 0.3


class DiagnosticsError(AssayError):
    """The posterior failed its convergence diagnostics; results are not to be trusted."""

    exit_code = 4


def count_divergences(idata: Any) -> int:
    """How many transitions of the posterior sample diverged."""
    stats = idata.sample_stats
    return int(stats["diverging"].sum()) if "diverging" in stats else 0


@dataclass
class Diagnostics:
    """Convergence checks over the model's parameters (per-passage effects reported apart)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    bfmi_min: float
    ess_required: float
    checked: list[str]
    failures: list[str] = field(default_factory=list)
    worst: dict[str, str] = field(default_factory=dict)
    passage_level: dict[str, float] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    quadrature_error: float | None = None
    """Binary and ordinal: spread of the quadrature's log-density error over posterior draws
    (``assay.bias.logit_direct.check_quadrature``); None on the interval scale."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def parameter_names(idata: Any) -> list[str]:
    """The posterior variables the diagnostics gate on: everything but per-passage effects."""
    posterior = idata.posterior
    return [
        str(name)
        for name in posterior.data_vars
        if "passage" not in posterior[name].dims and not str(name).endswith("__")
    ]


def diagnose(idata: Any) -> Diagnostics:
    """R-hat, bulk/tail ESS, divergences and BFMI against the fixed thresholds."""
    import arviz as az

    names = parameter_names(idata)
    summary = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
    chains = idata.posterior.sizes["chain"]
    ess_required = ESS_MIN_PER_CHAIN * chains
    divergences = count_divergences(idata)
    bfmi = az.bfmi(idata) if "energy" in idata.sample_stats else np.array([np.nan])
    diag = Diagnostics(
        rhat_max=float(summary["r_hat"].max()),
        ess_bulk_min=float(summary["ess_bulk"].min()),
        ess_tail_min=float(summary["ess_tail"].min()),
        divergences=divergences,
        bfmi_min=float(np.min(bfmi)),
        ess_required=float(ess_required),
        checked=names,
        worst={
            "r_hat": str(summary["r_hat"].idxmax()),
            "ess_bulk": str(summary["ess_bulk"].idxmin()),
            "ess_tail": str(summary["ess_tail"].idxmin()),
        },
    )
    if not diag.rhat_max <= RHAT_MAX:
        diag.failures.append(f"R-hat {diag.rhat_max:.3f} > {RHAT_MAX} ({diag.worst['r_hat']})")
    if not diag.ess_bulk_min >= ess_required:
        diag.failures.append(f"bulk ESS {diag.ess_bulk_min:.0f} < {ess_required}")
    if not diag.ess_tail_min >= ess_required:
        diag.failures.append(f"tail ESS {diag.ess_tail_min:.0f} < {ess_required}")
    if divergences:
        diag.failures.append(f"{divergences} divergent transitions")
    if not diag.bfmi_min >= BFMI_MIN:
        diag.failures.append(f"BFMI {diag.bfmi_min:.2f} < {BFMI_MIN}")
    passage_vars = [
        str(n) for n in idata.posterior.data_vars if n not in names and not str(n).endswith("__")
    ]
    if passage_vars:
        extra = az.summary(idata, var_names=passage_vars, kind="diagnostics", round_to="none")
        diag.passage_level = {
            "rhat_max": float(extra["r_hat"].max()),
            "ess_bulk_min": float(extra["ess_bulk"].min()),
        }
    return diag
