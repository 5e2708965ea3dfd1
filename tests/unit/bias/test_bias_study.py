"""The study's folder-in/folder-out steps on an imported ratings table (no fit: fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from assay.bias.steps import analyse_step, load_step, rate_step
from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings


def test_imported_ratings_flow_through_load_rate_and_analyse(tmp_path: Path) -> None:
    corpus = generate_corpus(SyntheticSpec(n_passages=100, n_textbooks=10, seed=2))
    ratings = simulate_ratings(corpus, seed=3, round_to=0.5)
    respelled = (ratings["publisher"] == "Aldine Press") & (ratings["rater"] == "sim-beta")
    ratings.loc[respelled, "publisher"] = "aldine press."
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    load_dir, rate_dir, out_dir = tmp_path / "load", tmp_path / "rate", tmp_path / "analysis"

    study = load_step(load_dir, kind="ratings", source=str(tmp_path / "ratings.csv"))
    assert study["scale"] == "interval" and study["n_passages"] == 100
    assert study["publisher_mapping"] == {"aldine press.": "Aldine Press"}  # most frequent wins
    assert rate_step(load_dir, rate_dir)["mode"] == "import"
    assert len(pd.read_parquet(rate_dir / "ratings.parquet")) == len(ratings)

    agreement = analyse_step(load_dir, rate_dir, out_dir, n_boot=50)
    stored = json.loads((out_dir / "agreement.json").read_text())
    assert stored["alpha"] == agreement["alpha"] and 0.3 < stored["alpha"] < 1
    stats = pd.read_parquet(out_dir / "passage_stats.parquet")
    assert len(stats) == 100 and (stats["n_valid"] == 3).all()
