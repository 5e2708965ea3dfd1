"""The bias study around its steps: the input the pipeline rates, the verdict of a finished run,
and all five steps in one process (tests, notebooks; ``assay bias-study`` runs the pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.bias.corpus import load_corpus
from assay.bias.io import read_json, write_parquet
from assay.bias.steps import SUMMARY_FILE, analyse_step, fit_step, load_step, rate_step, report_step
from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.errors import UsageError

__all__ = ["diagnostics_passed", "prepare_corpus_input", "run_in_process"]


def diagnostics_passed(run_dir: Path) -> tuple[bool, list[str]]:
    summary = read_json(Path(run_dir) / SUMMARY_FILE)
    diagnostics = summary["diagnostics"]
    return bool(diagnostics["passed"]), list(diagnostics["failures"])


def run_in_process(
    run_dir: Path,
    *,
    kind: str,
    source: str = "",
    scale: str = "",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 42,
    n_boot: int = 1000,
    **rate_options: Any,
) -> Path:
    """Every step in this process, into one folder (tests, notebooks); the CLI uses kfp.local."""
    run_dir = Path(run_dir)
    load_step(run_dir, kind=kind, source=source, scale=scale, seed=seed)
    rate_step(run_dir, run_dir, **rate_options)
    analyse_step(run_dir, run_dir, run_dir, n_boot=n_boot, seed=seed)
    fit_step(run_dir, run_dir, run_dir, draws=draws, tune=tune, chains=chains, seed=seed)
    return report_step(run_dir, run_dir, run_dir, run_dir, run_dir)


def prepare_corpus_input(
    corpus: Path | None, run_dir: Path, passages: int, textbooks: int, seed: int
) -> Path:
    """The corpus file the pipeline rates: the user's (validated here, so bad input fails
    before anything starts) or a synthetic one written to ``run_dir/input``."""
    if corpus is not None:
        load_corpus(corpus)
        return Path(corpus).absolute()
    if textbooks < 5 or passages < textbooks:
        raise UsageError("The synthetic corpus needs >= 5 textbooks and >= 1 passage per textbook.")
    frame = generate_corpus(SyntheticSpec(n_passages=passages, n_textbooks=textbooks, seed=seed))
    target = Path(run_dir) / "input" / "synthetic-corpus.parquet"
    write_parquet(target, frame)
    return target.absolute()
