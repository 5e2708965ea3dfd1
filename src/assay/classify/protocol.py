"""The evaluation protocol, written into metrics.json, the model card and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.classify.comparison import ALPHA, RULE, SIMPLICITY_ORDER, TEST_METHOD
from assay.classify.folds import (
    SINGLE_SPLIT_CALL,
    SINGLE_SPLIT_RANDOM_STATE,
    SINGLE_SPLIT_TEST_SIZE,
)
from assay.classify.metrics import CI_METHOD, DEFAULT_THRESHOLD
from assay.classify.models import MODELS, N_TREES
from assay.classify.operating_point import protocol_entries
from assay.classify.preprocess import RFE_STEP
from assay.classify.units import LATENCY_ROWS

if TYPE_CHECKING:
    from assay.classify.config import TrainConfig


def protocol_text(config: TrainConfig) -> str:
    return (
        f"Repeated stratified {config.folds}-fold CV x {config.repeats} repeats "
        f"(seed {config.seed}); inside every outer training split: StandardScaler -> SMOTE -> "
        f"RFE to {config.k_features} features (imbalanced-learn Pipeline), and a nested "
        f"{config.inner_folds}-fold search over {config.tuning_iter} candidates per model scored "
        f"by {config.selection_metric}; best candidate refitted on the outer training rows and "
        "scored on the outer validation rows. Selection: the simplest model not credibly worse "
        f"than the best by mean {config.selection_metric} (Holm-adjusted corrected paired "
        "t-test, p >= 0.05; the logistic-regression baseline is eligible). "
        "Calibration and clinical threshold, inside each outer training split from its inner "
        "out-of-fold predictions only: a sigmoid calibrator, then the highest calibrated threshold "
        f"reaching sensitivity {config.target_sensitivity}, scored on the outer held-out fold. "
        "Final model: same inner search, preprocessing, calibration and threshold rule on all rows."
    )


def protocol(config: TrainConfig, candidates: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    keys = config.model_keys()
    return {
        "text": protocol_text(config),
        "outer_cv": {
            "kind": "RepeatedStratifiedKFold",
            "folds": config.folds,
            "repeats": config.repeats,
            "seed": config.seed,
            "shuffle": "repeat r uses random_state derive_seed(seed, 'outer', r)",
        },
        "preprocessing": {
            "steps": ["StandardScaler", "SMOTE", "RFE(LogisticRegression)"],
            "k_features": config.k_features,
            "rfe_step": RFE_STEP,
            "fitted_on": "the training rows of each split only (outer and inner)",
            "exported": "StandardScaler -> ColumnTransformer passthrough of the RFE columns -> "
            "CalibratedClassifierCV(FrozenEstimator(classifier), method='sigmoid') "
            "(SMOTE is training-only)",
        },
        "tuning": {
            "inner_folds": config.inner_folds,
            "candidates_per_model": config.tuning_iter,
            "scored_by": config.selection_metric,
            "search_spaces": {k: {p: list(v) for p, v in MODELS[k].space.items()} for k in keys},
            "candidates": candidates,
            "trees_per_forest": N_TREES,
        },
        "metrics": {
            "threshold_metrics_at": DEFAULT_THRESHOLD,
            "positive_class": "malignant (1)",
            "per_fold": "each metric is computed on every outer validation fold",
            "ci": CI_METHOD,
            "predict_latency": f"{LATENCY_ROWS} single-row predict_proba calls of the served "
            "pipeline per outer fold, p50/p95 in ms",
        },
        "selection": {
            "metric": config.selection_metric,
            "rule": RULE.format(metric=config.selection_metric, alpha=ALPHA),
            "test": TEST_METHOD,
            "simplicity_order": [key for key, _ in SIMPLICITY_ORDER],
        },
        **protocol_entries(config.target_sensitivity),
        "single_split": {
            "test_size": SINGLE_SPLIT_TEST_SIZE,
            "random_state": SINGLE_SPLIT_RANDOM_STATE,
            "call": SINGLE_SPLIT_CALL,
            "note": "ONE stratified 80/20 split, same preprocessing and nested tuning; for "
            "comparison with single-split results in the literature, not an estimate of "
            "generalisation",
        },
        "final_refit": "selected model: nested search on all rows, preprocessing on all rows, "
        "best candidate fitted on all (SMOTE-resampled) rows",
    }
