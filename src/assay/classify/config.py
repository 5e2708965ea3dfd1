"""Training configuration: one typed object passed from the CLI/pipeline down to every stage."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from assay.classify.metrics import METRIC_NAMES

# Every reported metric can drive model selection.
SELECTION_METRICS = METRIC_NAMES


class TrainConfig(BaseModel):
    """Everything that decides the numbers of a training run (with the data and the seed)."""

    k_features: int = Field(15, ge=1, le=30, description="features kept by RFE")
    folds: int = Field(5, ge=2, description="outer stratified folds")
    repeats: int = Field(5, ge=1, description="repeats of the outer k-fold")
    inner_folds: int = Field(3, ge=2, description="folds of the nested tuning search")
    tuning_iter: int = Field(3, ge=1, description="candidates per model in the nested search")
    seed: int = 42
    target_sensitivity: float = Field(0.98, gt=0.0, le=1.0)
    selection_metric: str = "roc_auc"
    models: list[str] | None = Field(None, description="model keys; None = 8 ensembles + baseline")
    workers: int | None = Field(None, ge=1, description="Ray CPU cap; None = all cores")
    model_name: str = "wdbc-classifier"
    single_split: bool = Field(True, description="also report the single 80/20 split")

    @field_validator("selection_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in SELECTION_METRICS:
            raise ValueError(f"selection_metric must be one of {', '.join(SELECTION_METRICS)}")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str] | None) -> list[str] | None:
        from assay.classify.models import ALL_KEYS

        if value is None:
            return None
        unknown = [m for m in value if m not in ALL_KEYS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(ALL_KEYS)}")
        if not value:
            raise ValueError("models must name at least one model")
        return list(dict.fromkeys(value))

    def model_keys(self) -> list[str]:
        from assay.classify.models import ALL_KEYS

        return list(self.models) if self.models else list(ALL_KEYS)
