"""Training options, declared once.

* ``TrainingOptions``: the options that shape the numbers (name, default, bounds, help);
* ``TrainingSettings``: every parameter of the training pipeline = every training flag of
  ``assay train`` (``ASSAY_<NAME>`` in the environment), flat and KFP-friendly;
* ``TrainConfig``: what the stages receive, derived from the settings plus protocol knobs that
  are not user options (inner folds, selection metric, the single 80/20 split).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assay.classify.names import METRIC_NAMES
from assay.classify.names import MODEL_KEYS as ALL_KEYS

# Every reported metric can drive model selection.
SELECTION_METRICS = METRIC_NAMES
CLUSTER_REGISTRY = "s3://assay-models/registry"
"""The pipeline's registry default: the MinIO bucket of manifests/base."""


def known_models(value: list[str] | None) -> list[str] | None:
    """Model keys checked against the catalogue, duplicates dropped; None = all."""
    if value is None:
        return None
    unknown = [m for m in value if m not in ALL_KEYS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(ALL_KEYS)}")
    if not value:
        raise ValueError("models must name at least one model")
    return list(dict.fromkeys(value))


def split_models(value: str) -> list[str] | None:
    """``"adaboost, bagging"`` -> ``["adaboost", "bagging"]``; ``""`` -> None (all)."""
    return [m.strip() for m in value.split(",") if m.strip()] or None


class TrainingOptions(BaseModel):
    """The options that decide the numbers of a run (with the data)."""

    k_features: int = Field(15, ge=1, le=30, description="Features kept by RFE (1-30).")
    folds: int = Field(5, ge=2, description="Outer stratified CV folds.")
    repeats: int = Field(5, ge=1, description="Repeats of the outer k-fold CV.")
    tuning_iter: int = Field(
        3, ge=1, description="Hyper-parameter candidates per model in the nested search."
    )
    seed: int = Field(42, description="Seed: same seed, same results.")
    target_sensitivity: float = Field(
        0.98, gt=0.0, le=1.0, description="Sensitivity the clinical threshold must reach."
    )
    model_name: str = Field("wdbc-classifier", description="Name of the model in the registry.")


class TrainingSettings(BaseSettings, TrainingOptions):
    """The training pipeline's parameters, one field each; the flags of ``assay train``."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    data: str = Field(
        "",
        description=(
            "CSV with the 30 WDBC feature names (scikit-learn spelling, any order) and a target "
            "column (M/B, malignant/benign or 1/0); an id column is ignored. Default: the WDBC "
            "data bundled with scikit-learn. With --runner kfp: a path in the image or "
            "s3://bucket/key.csv."
        ),
    )
    target: str = Field("diagnosis", description="Name of the label column.")
    impute: Literal["none", "median"] = Field(
        "none", description="Missing values: 'none' (an error) or 'median'."
    )
    models: str = Field(
        "",
        description=("Comma-separated model keys (" + ", ".join(ALL_KEYS) + "). Default: all."),
    )
    ray_cpus: int = Field(
        0,
        ge=0,
        description="Cap on Ray CPUs (0 = all cores; RAY_ADDRESS selects a cluster). "
        "(Was --workers / ASSAY_WORKERS.)",
    )
    registry: str = Field(
        CLUSTER_REGISTRY,
        description=(
            "Registry root: file:///path, a folder, or s3://bucket/prefix (MINIO_ENDPOINT, "
            "MINIO_ACCESS_KEY, MINIO_SECRET_KEY, MINIO_SECURE). Default: ./.assay/registry "
            f"locally, {CLUSTER_REGISTRY} with --runner kfp."
        ),
    )
    deploy: bool = Field(
        False,
        description="--runner kfp only: after registering, roll the InferenceService to the "
        "new version.",
    )
    canary_percent: int = Field(
        10, ge=1, le=100, description="With --deploy: traffic share for the new version (1-100)."
    )

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: str) -> str:
        known_models(split_models(value))
        return value

    def arguments(self) -> dict[str, Any]:
        """The pipeline's arguments."""
        return self.model_dump()

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_options(self.model_dump())


class TrainConfig(TrainingOptions):
    """Everything the stages need: the options plus the protocol's fixed knobs."""

    inner_folds: int = Field(3, ge=2, description="folds of the nested tuning search")
    selection_metric: str = "roc_auc"
    models: list[str] | None = Field(None, description="model keys; None = 8 ensembles + baseline")
    workers: int | None = Field(None, ge=1, description="Ray CPU cap; None = all cores")
    single_split: bool = Field(True, description="also report the single 80/20 split")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainConfig:
        """Flat pipeline parameters -> TrainConfig. ``models=""``: all; ``ray_cpus=0``: all
        cores; parameters that are not training options (data, registry, ...) are ignored."""
        values = {k: v for k, v in options.items() if k in cls.model_fields}
        values["models"] = split_models(options.get("models", ""))
        values["workers"] = options.get("ray_cpus") or None
        return cls.model_validate(values)

    @field_validator("selection_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in SELECTION_METRICS:
            raise ValueError(f"selection_metric must be one of {', '.join(SELECTION_METRICS)}")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str] | None) -> list[str] | None:
        return known_models(value)

    def model_keys(self) -> list[str]:
        return list(self.models) if self.models else list(ALL_KEYS)

    def unit_count(self) -> int:
        """CV work units of a run: one per model x outer split (+ the single 80/20 split)."""
        splits = self.folds * self.repeats + (1 if self.single_split else 0)
        return len(self.model_keys()) * splits
