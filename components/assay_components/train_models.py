"""Repeated stratified CV with nested tuning on Ray, selection, clinical threshold, final refit."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def train_models(
    dataset: Input[Dataset],
    k_features: int,
    folds: int,
    repeats: int,
    tuning_iter: int,
    seed: int,
    models: str,
    ray_cpus: int,
    target_sensitivity: float,
    model_name: str,
    training: Output[Artifact],
    model: Output[Model],
):
    """Train every model under CV (Ray: RAY_ADDRESS or local), export the selected one.

    models: comma-separated model keys, "" for the 8 ensembles + the baseline.
    ray_cpus: Ray CPU cap, 0 for all cores.
    training: CV folder (out-of-fold predictions, per-fold metrics) for the evaluation step.
    model: model.joblib + model-card.json (a plain scikit-learn Pipeline).
    """
    from assay.classify.steps import train_step

    train_step(
        dataset,
        training,
        model,
        k_features=k_features,
        folds=folds,
        repeats=repeats,
        tuning_iter=tuning_iter,
        seed=seed,
        models=models,
        ray_cpus=ray_cpus,
        target_sensitivity=target_sensitivity,
        model_name=model_name,
    )
