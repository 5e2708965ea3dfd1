"""The bias study around its steps: the input the pipeline rates and the verdict of a finished
run (``assay bias-study`` runs the steps through the pipeline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from assay.bias.corpus import load_corpus
from assay.bias.io import read_json, write_parquet
from assay.bias.prompt import build_messages
from assay.bias.steps import SUMMARY_FILE
from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.errors import UsageError
from assay.llm.ensemble import Ensemble, load_ensemble
from assay.llm.preflight import ModelLister, Plan, check_keys, check_models, plan_calls, stale_terms

__all__ = [
    "StudyPreflight",
    "corpus_passages",
    "diagnostics_passed",
    "preflight_study",
    "prepare_corpus_input",
    "write_corpus_input",
]


@dataclass(frozen=True)
class StudyPreflight:
    """What a rating run will call and may cost, checked before its first call."""

    ensemble: Ensemble
    plan: Plan
    notes: tuple[str, ...]

    @property
    def paid(self) -> bool:
        return self.plan.worst_case_usd > 0


def preflight_study(
    ensemble_ref: str | None,
    texts: Sequence[str],
    environ: Mapping[str, str],
    lister: ModelLister | None = None,
    today: datetime | None = None,
) -> StudyPreflight:
    """Load the ensemble and check its keys and models (ConfigError, exit 2, otherwise), then
    the worst-case cost and shortest duration of rating ``texts`` with every rater."""
    ensemble = load_ensemble(ensemble_ref, environ=environ)
    check_keys(ensemble, environ)
    notes = check_models(ensemble, environ, lister)
    notes += stale_terms(ensemble, (today or datetime.now(UTC)).date())
    plan = plan_calls(ensemble, [build_messages(text) for text in texts])
    return StudyPreflight(ensemble, plan, tuple(notes))


def corpus_passages(
    corpus: Path | None, passages: int, textbooks: int, seed: int
) -> tuple[pd.DataFrame, Path | None]:
    """The passages to rate, validated, and the user's file (None: synthetic, not yet written)."""
    if corpus is not None:
        return load_corpus(corpus).passages, Path(corpus).absolute()
    if textbooks < 5 or passages < textbooks:
        raise UsageError("The synthetic corpus needs >= 5 textbooks and >= 1 passage per textbook.")
    return generate_corpus(
        SyntheticSpec(n_passages=passages, n_textbooks=textbooks, seed=seed)
    ), None


def write_corpus_input(frame: pd.DataFrame, run_dir: Path) -> Path:
    """Write a synthetic corpus to ``run_dir/input`` (the first thing a run folder holds)."""
    target = Path(run_dir) / "input" / "synthetic-corpus.parquet"
    write_parquet(target, frame)
    return target.absolute()


def diagnostics_passed(run_dir: Path) -> tuple[bool, list[str]]:
    summary = read_json(Path(run_dir) / SUMMARY_FILE)
    diagnostics = summary["diagnostics"]
    return bool(diagnostics["passed"]), list(diagnostics["failures"])


def prepare_corpus_input(
    corpus: Path | None, run_dir: Path, passages: int, textbooks: int, seed: int
) -> Path:
    """The corpus file the pipeline rates: the user's (validated here, so bad input fails
    before anything starts) or a synthetic one written to ``run_dir/input``."""
    frame, given = corpus_passages(corpus, passages, textbooks, seed)
    return given if given is not None else write_corpus_input(frame, run_dir)
