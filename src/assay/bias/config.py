"""The bias study's options, declared once: the flags of ``assay bias-study`` (``ASSAY_<NAME>``
in the environment) and, through ``pipeline_arguments``, the bias-study pipeline's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assay.errors import UsageError

INPUT_FIELDS = ("corpus", "babe", "ratings", "ensemble")
"""Options that choose the input; they become the pipeline's kind, source and ensemble."""

BUDGET_FIELDS = ("budget", "no_budget_cap")
"""Options settled before the run starts (with the preflight); they become budget_usd."""

PIPELINE_PARAMETERS: dict[str, str] = {
    "scale": "scale",
    "passages": "synthetic_passages",
    "textbooks": "synthetic_textbooks",
    "concurrency": "concurrency",
    "n_boot": "n_boot",
    "draws": "draws",
    "tune": "tune",
    "chains": "chains",
    "seed": "seed",
    "rope": "rope",
    "reference_publisher": "reference_publisher",
}
"""Every other option -> the pipeline parameter it sets."""

RUN_PARAMETERS = ("kind", "source", "ensemble", "store_dir", "sim_url", "budget_usd")
"""Pipeline parameters the command derives for a run (input, durable store, endpoint)."""


class BiasStudySettings(BaseSettings):
    """Every option of a bias-study run."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    corpus: Path | None = Field(
        None,
        description="Passage corpus (CSV, JSONL or Parquet): passage_id, text, publisher; "
        "optional textbook/source, topic, true_score. Default: a bundled synthetic corpus.",
    )
    babe: Path | None = Field(
        None,
        description="Analyse BABE's expert labels from this folder (experts as raters, outlets "
        "as publishers, binary scale), e.g. ../shared/data/babe.",
    )
    ratings: Path | None = Field(
        None,
        description="Analyse a pre-collected long ratings table (passage_id, publisher, rater, "
        "score and/or biased, ...) instead of rating passages.",
    )
    ensemble: str | None = Field(
        None,
        description="Rater ensemble of real LLMs: a YAML/TOML file, s3://bucket/key or "
        "bundled:providers; keys from the environment. Default: the bundled simulated raters "
        "on a simulated endpoint started for the run. (Was --raters / ASSAY_RATERS.)",
    )
    scale: Literal["auto", "interval", "binary", "ordinal"] = Field(
        "auto",
        description="Rating scale: interval (score -2..+2), binary (biased 0/1), ordinal (the "
        "score's nearest whole point -2..+2, or an imported scale's values); auto = binary for "
        "BABE, interval otherwise. Binary and ordinal fits integrate passages with nodes that "
        "follow sharp raters' thresholds, check that quadrature against a fine rule, and fail "
        "their diagnostics where it is too coarse.",
    )
    passages: int = Field(600, ge=1, description="Size of the synthetic corpus.")
    textbooks: int = Field(60, ge=1, description="Textbooks in the synthetic corpus.")
    draws: int = Field(1000, ge=1, description="Posterior draws per chain.")
    tune: int = Field(1000, ge=0, description="Warm-up draws per chain.")
    chains: int = Field(4, ge=1, description="MCMC chains.")
    n_boot: int = Field(1000, ge=0, description="Bootstrap resamples for alpha's CI.")
    seed: int = Field(42, description="Seed for corpus, bootstrap and sampler.")
    rope: float = Field(
        0.0,
        ge=0.0,
        description="Half-width of the region of practical equivalence for verdicts; 0 = the "
        "scale's default (interval 0.1 score points, binary/ordinal 0.18 logits).",
    )
    reference_publisher: str = Field(
        "",
        description="Also judge every publisher against this one (a shared rater bias "
        "cancels); default: against the average publisher (and gold passages if any).",
    )
    concurrency: int = Field(32, ge=1, description="LLM calls in flight.")
    budget: float | None = Field(
        None,
        gt=0.0,
        description="Stop rating before spending this (USD). Without it, rating with --ensemble "
        "asks for confirmation of the worst-case cost, or needs --no-budget-cap.",
    )
    no_budget_cap: bool = Field(
        False, description="Rate with --ensemble without --budget and without asking."
    )

    @model_validator(mode="after")
    def _one_input(self) -> BiasStudySettings:
        chosen = [f"--{name}" for name in ("corpus", "babe", "ratings") if getattr(self, name)]
        if len(chosen) > 1:
            raise UsageError(f"Use only one of {', '.join(chosen)}.")
        if self.ensemble is not None and (self.babe or self.ratings):
            raise UsageError(
                "--ensemble rates passages; it cannot be combined with --babe/--ratings."
            )
        if self.budget is not None and self.no_budget_cap:
            raise UsageError("Use either --budget or --no-budget-cap, not both.")
        return self

    @property
    def imported(self) -> Path | None:
        """The BABE folder or ratings table to analyse instead of rating passages."""
        return self.babe if self.babe is not None else self.ratings

    @property
    def ensemble_ref(self) -> str | None:
        """The ensemble as the rate step reads it: bundled:/s3:// as given, a file absolute."""
        if self.ensemble is None or self.ensemble.startswith(("bundled:", "s3://")):
            return self.ensemble
        return str(Path(self.ensemble).absolute())

    def pipeline_arguments(self, **run: Any) -> dict[str, Any]:
        """The pipeline's arguments: every option but the input choice, plus ``run``
        (``RUN_PARAMETERS``: kind, source, ...)."""
        arguments = {param: getattr(self, name) for name, param in PIPELINE_PARAMETERS.items()}
        if arguments["scale"] == "auto":
            arguments["scale"] = ""
        unknown = set(run) - set(RUN_PARAMETERS)
        if unknown:
            raise ValueError(f"not bias-study run parameters: {sorted(unknown)}")
        return {**arguments, **run}
