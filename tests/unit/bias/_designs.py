"""Random studies for the Bayesian model tests."""

from __future__ import annotations

import numpy as np

from assay.bias.design import ModelData


def random_design(
    rng: np.random.Generator, scale: str, *, textbooks: bool, missing: float
) -> ModelData:
    """A random study: 300 passages, 4 publishers (with 3 textbooks each, or none), 4 raters
    each rating a passage with probability 1 - ``missing`` (at least one rating a passage),
    answers on 2 or 4 levels, so patterns repeat and pooling has something to do."""
    passages, publishers, raters = 300, 4, 4
    n_values = 2 if scale == "binary" else 4
    passage_publisher = rng.integers(0, publishers, passages)
    passage_textbook = None
    textbook_names = None
    if textbooks:
        passage_textbook = passage_publisher * 3 + rng.integers(0, 3, passages)
        textbook_names = [f"T{t}" for t in range(publishers * 3)]
    rated = rng.random((passages, raters)) >= missing
    rated[np.arange(passages), rng.integers(0, raters, passages)] = True
    obs_passage, obs_rater = np.nonzero(rated)
    y = rng.integers(0, n_values, len(obs_passage))
    return ModelData(
        scale=scale,  # type: ignore[arg-type]
        publishers=[f"P{j}" for j in range(publishers)],
        raters=[f"r{k}" for k in range(raters)],
        passages=[f"p{i}" for i in range(passages)],
        textbooks=textbook_names,
        passage_publisher=passage_publisher,
        passage_textbook=passage_textbook,
        obs_passage=obs_passage,
        obs_rater=obs_rater,
        y=y if scale == "binary" else y.astype(float),
        levels=None if scale == "binary" else np.arange(n_values, dtype=float),
    )
