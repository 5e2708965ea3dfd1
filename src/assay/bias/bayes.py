"""The hierarchical model of publisher effects, fitted with nutpie and checked: the public
names of its parts in one place.

- ``assay.bias.likelihood``: the likelihood maths (effects integrated out, quadrature)
- ``assay.bias.priors``: the priors every likelihood shares
- ``assay.bias.model_normal``, ``assay.bias.model_logit``: one builder per likelihood;
  ``assay.bias.models`` picks one for the scale and describes the model
- ``assay.bias.sampling``: sampler settings, compilation and the retrying sampler run
- ``assay.bias.fit``: the whole fit, with the draws added after sampling
- ``assay.bias.diagnostics``, ``assay.bias.predictive``: the checks
"""

from __future__ import annotations

from assay.bias.design import NO_TEXTBOOK, ModelData, prepare
from assay.bias.diagnostics import DiagnosticsError, diagnose
from assay.bias.fit import HDI_PROB, FitResult, add_collapsed_effects, fit
from assay.bias.models import build_model, collapses_effects
from assay.bias.priors import CENTRED_MIN_RATINGS_PER_TEXTBOOK, centred_textbooks
from assay.bias.sampling import (
    RETRY_TARGET_ACCEPT,
    SPARSE_TEXTBOOKS_PER_PUBLISHER,
    BayesConfig,
    compile_model,
    sample,
    sample_robustly,
    target_accept_for,
)

__all__ = [
    "CENTRED_MIN_RATINGS_PER_TEXTBOOK",
    "HDI_PROB",
    "NO_TEXTBOOK",
    "RETRY_TARGET_ACCEPT",
    "SPARSE_TEXTBOOKS_PER_PUBLISHER",
    "BayesConfig",
    "DiagnosticsError",
    "FitResult",
    "ModelData",
    "add_collapsed_effects",
    "build_model",
    "centred_textbooks",
    "collapses_effects",
    "compile_model",
    "diagnose",
    "fit",
    "prepare",
    "sample",
    "sample_robustly",
    "target_accept_for",
]
