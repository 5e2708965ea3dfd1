"""The bias study around its steps: the input the pipeline rates and the verdict of a finished
run (``assay bias-study`` runs the steps through the pipeline)."""

from __future__ import annotations

from pathlib import Path

from assay.bias.corpus import load_corpus
from assay.bias.io import read_json, write_parquet
from assay.bias.steps import SUMMARY_FILE
from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.errors import UsageError

__all__ = ["diagnostics_passed", "prepare_corpus_input"]


def diagnostics_passed(run_dir: Path) -> tuple[bool, list[str]]:
    summary = read_json(Path(run_dir) / SUMMARY_FILE)
    diagnostics = summary["diagnostics"]
    return bool(diagnostics["passed"]), list(diagnostics["failures"])


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
