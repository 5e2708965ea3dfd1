"""Attack: publisher, textbook and rater names from a user's ratings table that are HTML.

A table whose names are ``<img src=x onerror=alert(1)>``, ``<script>alert(1)</script>`` and a
quote-breaking ``" onmouseover="x`` goes through the study's own steps (load, rate = import,
agreement, a short real fit, report); the report must show the names as text and hold no element
or attribute of theirs. Nothing is mocked; the fit is short, so its diagnostics may fail, which
the report then says (the failure banner is part of what is checked).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _html_markup import HOSTILE_NAMES, live_markup, visible_text

from assay.bias.report import FIGURES
from assay.bias.steps import analyse_step, fit_step, load_step, rate_step, report_step
from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings

pytestmark = pytest.mark.slow

RENAMED = {
    "Aldine Press": HOSTILE_NAMES[0],
    "Beacon Learning": HOSTILE_NAMES[1],
    "Cardinal House": HOSTILE_NAMES[2],
}


def _hostile_ratings(path: Path) -> None:
    corpus = generate_corpus(SyntheticSpec(n_passages=60, n_textbooks=6, seed=2))
    ratings = simulate_ratings(corpus, seed=3, round_to=0.5)
    ratings = ratings.merge(corpus[["passage_id", "true_score"]], on="passage_id")
    for old, new in RENAMED.items():
        ratings["textbook"] = ratings["textbook"].str.replace(old, new, regex=False)
    ratings["publisher"] = ratings["publisher"].replace(RENAMED)
    # another spelling of a hostile publisher, so the normalisation table shows it too
    first = (
        ratings["passage_id"]
        == ratings.loc[ratings["publisher"] == HOSTILE_NAMES[0], "passage_id"].iloc[0]
    )
    ratings.loc[first, "publisher"] = HOSTILE_NAMES[0].upper()
    ratings["rater"] = ratings["rater"].replace({"sim-alpha": HOSTILE_NAMES[1]})
    ratings.to_csv(path, index=False)


def test_hostile_names_render_as_text_not_markup(tmp_path: Path) -> None:
    source = tmp_path / "ratings.csv"
    _hostile_ratings(source)
    load, rate, analysis, fit, run = (tmp_path / d for d in ("load", "rate", "an", "fit", "run"))
    study = load_step(load, kind="ratings", source=str(source))
    assert study["publisher_mapping"] == {HOSTILE_NAMES[0].upper(): HOSTILE_NAMES[0]}
    rate_step(load, rate)
    analyse_step(load, rate, analysis, n_boot=20)
    fit_step(load, rate, fit, draws=100, tune=100, chains=2, seed=5)

    page = report_step(load, rate, analysis, fit, run).read_text()

    assert live_markup(page, set(FIGURES)) == []
    text = visible_text(page)
    for name in HOSTILE_NAMES:  # the names reached the page, as text
        assert name in text, name
    assert pd.read_parquet(run / "ratings.parquet")["rater"].eq(HOSTILE_NAMES[1]).any()
