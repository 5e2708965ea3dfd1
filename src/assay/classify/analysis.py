"""The metrics.json blocks that compare models and explain the selected one.

``selection`` (pairwise tests and the rule), ``literature_split`` (the quoted single split beside
the CV estimate), ``decision_curve`` and ``features`` (RFE frequency, permutation importance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.classify.decision_curve import decision_curves
from assay.classify.evaluate import select_model
from assay.classify.importance import rfe_frequency
from assay.classify.literature import literature_comparison
from assay.classify.models import MODELS
from assay.data.wdbc import FEATURE_NAMES

if TYPE_CHECKING:
    import pandas as pd


def pooled_label(repeats: int, rows: int) -> str:
    return (
        f"pooled out-of-fold predictions of {repeats} repeats x {rows} patients "
        f"(each patient counted {repeats} times)"
    )


def curve_models(selection: dict[str, Any], keys: list[str]) -> list[str]:
    """The selected model, the baseline, and the best by mean when the baseline was selected."""
    baselines = [k for k in keys if MODELS[k].baseline]
    return list(dict.fromkeys([selection["selected"], *baselines, selection["best_by_mean"]]))


def build_analysis(
    tables: dict[str, pd.DataFrame], summary: dict[str, Any], summaries: dict[str, Any]
) -> dict[str, Any]:
    """``tables`` holds the run's folds, oof and single-split frames."""
    folds, oof = tables["folds"], tables["oof"]
    metric = summary["config"]["selection_metric"]
    selection = summary.get("selection") or select_model(folds, metric)
    return {
        "selection": selection,
        "literature_split": literature_comparison(tables["single"], folds, summaries),
        "decision_curve": decision_curves(oof, curve_models(selection, list(summaries))),
        "features": {
            "rfe_frequency": rfe_frequency(folds, FEATURE_NAMES),
            "permutation_importance": summary.get("permutation_importance", {}),
        },
    }
