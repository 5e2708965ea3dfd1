"""Bias study, step 1: validate the input (corpus, BABE folder or ratings table)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_load_corpus(
    kind: str,
    source: str,
    scale: str,
    synthetic_passages: int,
    synthetic_textbooks: int,
    seed: int,
    loaded: Output[Artifact],
):
    """Write loaded/{study.json, passages.parquet[, imported_ratings.parquet]}.

    kind: "corpus" (CSV/JSONL/Parquet), "babe" (folder), "ratings" (long table) or "synthetic".
    scale: "interval", "binary", "ordinal" or "" (binary for BABE, else interval).
    """
    from pathlib import Path

    from assay.bias.steps import load_step

    study = load_step(
        Path(loaded.path),
        kind=kind,
        source=source,
        scale=scale,
        synthetic_passages=synthetic_passages,
        synthetic_textbooks=synthetic_textbooks,
        seed=seed,
    )
    loaded.metadata.update({k: study[k] for k in ("kind", "scale", "n_passages", "n_publishers")})
