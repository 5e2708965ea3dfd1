"""The studies ``bayes_bench.py`` fits: the seed-scale textbook study (interval) and a study of
BABE's shape (binary, ordinal): BABE itself where ../shared/data/babe is present - its experts'
bias labels (binary) and their opinion labels (ordinal: entirely factual < somewhat factual but
also opinionated < expresses the writer's opinion) - else simulated sentences of its shape
(3,699 sentences, 11 outlets, 8 experts, about 5 of them per sentence, no textbooks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.bias.babe import RAW_FILE, load_babe, passage_id_for
from assay.bias.synthetic import SimulatedRater, SyntheticSpec, generate_corpus, simulate_ratings

BABE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "babe"
BABE_SENTENCES, BABE_OUTLETS, BABE_EXPERTS, BABE_RATINGS_PER_SENTENCE = 3699, 11, 8, 5
OPINION_LEVELS = {
    "Entirely factual": 0.0,
    "Somewhat factual but also opinionated": 1.0,
    "Expresses writer\u2019s opinion": 2.0,
}


@dataclass(frozen=True)
class Study:
    name: str
    ratings: pd.DataFrame


def seed_scale(seed: int, *, quick: bool = False) -> Study:
    """4,500 passages x 3 simulated raters, 5 publishers, 150 textbooks, scores rounded to 0.5
    like LLM answers (quick: 600 passages, 60 textbooks)."""
    passages, textbooks = (600, 60) if quick else (4500, 150)
    corpus = generate_corpus(SyntheticSpec(n_passages=passages, n_textbooks=textbooks, seed=seed))
    ratings = simulate_ratings(corpus, seed=seed, round_to=0.5)
    return Study(f"seed-scale synthetic ({passages} passages, {textbooks} textbooks)", ratings)


def _babe_shaped(
    seed: int, sentences: int, round_to: float, missing: float | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    effects = {f"outlet-{k:02d}": float(e) for k, e in enumerate(np.linspace(-0.8, 0.8, 11))}
    spec = SyntheticSpec(
        n_passages=sentences, n_textbooks=BABE_OUTLETS, publisher_effects=effects,
        textbook_sd=0.0, passage_sd=0.8, seed=seed,
    )  # fmt: skip
    corpus = generate_corpus(spec).assign(textbook=pd.NA)
    raters = [
        SimulatedRater(f"expert-{k}", offset=float(rng.normal(0, 0.2)), noise=0.6)
        for k in range(BABE_EXPERTS)
    ]
    if missing is None:  # raters missing at random, about 5 of the 8 per sentence
        missing = 1.0 - BABE_RATINGS_PER_SENTENCE / BABE_EXPERTS
    ratings = simulate_ratings(corpus, raters, seed=seed, round_to=round_to, missing_rate=missing)
    return ratings[ratings["error"] == ""].reset_index(drop=True)


BABE_PANELS = ((0, 1, 2, 3, 4), (0, 1, 2, 5, 4), (6, 7, 2, 5, 4))
"""BABE's raters work in three fixed panels of five of its eight experts (1,678, 980 and 974 of
its 3,699 sentences; the other 67 have smaller subsets of the same experts)."""
BABE_PANEL_SHARES = (0.46, 0.27, 0.27)


def babe_panelled(seed: int, sentences: int, scale: str) -> pd.DataFrame:
    """Sentences of BABE's shape rated as BABE's were: each by one of three fixed panels of five
    experts, so that (as on BABE) passages share rating patterns and pool. Binary labels; the
    ordinal answers take three levels (-1, 0, 1), like BABE's opinion labels."""
    ratings = _babe_shaped(seed, sentences, round_to=1.0, missing=0.0)
    passages = ratings["passage_id"].drop_duplicates().to_numpy()
    rng = np.random.default_rng(seed + 1)
    panel_of = dict(
        zip(passages, rng.choice(3, size=len(passages), p=BABE_PANEL_SHARES), strict=True)
    )
    experts = {f"expert-{k}": k for k in range(BABE_EXPERTS)}
    on_panel = [
        experts[rater] in BABE_PANELS[panel_of[passage]]
        for passage, rater in zip(ratings["passage_id"], ratings["rater"], strict=True)
    ]
    kept = ratings[on_panel].reset_index(drop=True)
    if scale == "ordinal":
        kept["score"] = kept["score"].clip(-1.0, 1.0)
    return kept


def babe_opinions(babe_dir: Path) -> pd.DataFrame:
    """BABE's ratings with each expert's opinion label (0, 1, 2) as the score."""
    ratings = load_babe(babe_dir).ratings
    raw = pd.read_csv(babe_dir / RAW_FILE, sep=";", encoding="utf-8-sig").dropna(subset=["text"])
    opinion = pd.DataFrame(
        {
            "passage_id": raw["text"].map(passage_id_for),
            "rater": "expert-" + raw["annotator_id"].astype(str),
            "opinion": raw["label_opinion"].map(OPINION_LEVELS),
        }
    ).drop_duplicates(["passage_id", "rater"])
    merged = ratings.drop(columns="score").merge(opinion, on=["passage_id", "rater"], how="left")
    return merged.rename(columns={"opinion": "score"})


def babe_like(scale: str, seed: int, *, quick: bool = False, babe_dir: Path = BABE_DIR) -> Study:
    """The binary or ordinal study of BABE's shape (quick: 400 simulated sentences)."""
    if not quick and (babe_dir / RAW_FILE).exists():
        if scale == "binary":
            babe = load_babe(babe_dir)
            return Study(f"BABE expert labels ({babe.notes['units']} sentences)", babe.ratings)
        return Study("BABE expert opinion labels (3 levels)", babe_opinions(babe_dir))
    sentences = 400 if quick else BABE_SENTENCES
    # Ordinal: scores rounded to whole steps, the five levels -2 ... +2.
    ratings = _babe_shaped(seed, sentences, round_to=1.0)
    return Study(f"BABE-shaped synthetic ({sentences} sentences, {scale})", ratings)
