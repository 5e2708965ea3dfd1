"""A synthetic passage corpus with known publisher effects, and simulated raters over it.

The corpus is generated deterministically from a seed at run time (nothing is shipped as a
file). Every passage carries its hidden ground truth: ``true_score`` on the DESIGN.md bias
scale (-2 strong liberal ... +2 strong conservative) and ``true_biased``. The simulated LLM
endpoint rates passages from ``true_score``; :func:`simulate_ratings` does the same in-process
for the parameter-recovery test and the benchmark.

Truth is built as ``publisher effect + textbook effect + passage effect``, with textbook
effects centred within each publisher and passage effects within each textbook, so every
publisher's passages average exactly its effect (before clipping to [-2, 2]) and a model that
recovers publisher effects can be checked against ``SyntheticSpec.publisher_effects``.

That centring is not the model's generative story: with passage effects centred within each
textbook, a textbook's mean carries no passage-level spread (the model expects
``passage_sd**2 / passages per textbook`` of it, 0.45**2 / 10 = 0.020 at the default design),
so the fitted ``textbook_sd`` is pulled below the realised one, and one corpus says little
about calibration. ``assay.bias.simulate`` draws ratings from the model itself, uncentred, for
the coverage study (``assay.bias.coverage``, ``benchmarks/bayes_coverage.py``). This module
keeps the centred corpus: the demo, the simulated endpoint and the tests rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assay.bias.ratings import RATINGS_COLUMNS

# Fictional publishers with fixed true effects on the score scale (mean of their passages).
DEFAULT_PUBLISHER_EFFECTS: dict[str, float] = {
    "Aldine Press": -0.6,
    "Beacon Learning": -0.25,
    "Cardinal House": 0.0,
    "Delmar Books": 0.3,
    "Evergreen Education": 0.65,
}

_TOPICS: tuple[str, ...] = (
    "immigration",
    "taxation",
    "climate policy",
    "gun control",
    "health care",
    "the labour movement",
    "civil rights",
    "foreign policy",
    "the New Deal",
    "free markets",
)
_FRAMES_BY_LEAN: dict[int, tuple[str, ...]] = {
    -2: ("a moral failure that progressive reform must urgently correct",),
    -1: ("a problem that public action has helped to ease",),
    0: ("a subject on which historians and economists still disagree",),
    1: ("an area where government overreach has often caused harm",),
    2: ("proof that traditional values and limited government must be restored",),
}


@dataclass(frozen=True)
class SyntheticSpec:
    """The shape and the hidden truth of a synthetic corpus (defaults: the seed-scale study)."""

    n_passages: int = 4500
    n_textbooks: int = 150
    publisher_effects: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_PUBLISHER_EFFECTS)
    )
    textbook_sd: float = 0.2
    passage_sd: float = 0.45
    seed: int = 42


@dataclass(frozen=True)
class SimulatedRater:
    """An in-process simulated rater: systematic offset and noise on the score scale."""

    name: str
    offset: float
    noise: float


DEFAULT_RATERS: tuple[SimulatedRater, ...] = (
    SimulatedRater("sim-alpha", offset=0.15, noise=0.35),
    SimulatedRater("sim-beta", offset=-0.1, noise=0.45),
    SimulatedRater("sim-gamma", offset=-0.05, noise=0.55),
)


def generate_corpus(spec: SyntheticSpec | None = None) -> pd.DataFrame:
    """Passages: passage_id, text, publisher, textbook, topic and the truth (true_score,
    true_publisher_effect, true_biased).

    Textbooks are spread evenly over publishers and passages evenly over textbooks (the
    remainder goes to the first ones), so the seed-scale spec gives 30 textbooks per publisher
    and 30 passages per textbook.
    """
    spec = spec or SyntheticSpec()
    publishers = list(spec.publisher_effects)
    if spec.n_textbooks < len(publishers) or spec.n_passages < spec.n_textbooks:
        raise ValueError("need at least one textbook per publisher and one passage per textbook")
    rng = np.random.default_rng(spec.seed)
    textbook_publisher = np.arange(spec.n_textbooks) % len(publishers)
    textbook_effect = _centred(
        rng.normal(0.0, spec.textbook_sd, spec.n_textbooks), textbook_publisher
    )
    passage_textbook = np.arange(spec.n_passages) % spec.n_textbooks
    passage_publisher = textbook_publisher[passage_textbook]
    effects = np.array([spec.publisher_effects[p] for p in publishers])
    passage_effect = _centred(rng.normal(0.0, spec.passage_sd, spec.n_passages), passage_textbook)
    true_score = effects[passage_publisher] + textbook_effect[passage_textbook] + passage_effect
    true_score = np.clip(true_score, -2.0, 2.0)
    topics = rng.integers(0, len(_TOPICS), spec.n_passages)
    textbook_names = [
        f"{publishers[textbook_publisher[t]]} Social Studies Vol. {t // len(publishers) + 1}"
        for t in range(spec.n_textbooks)
    ]
    rows = []
    for i in range(spec.n_passages):
        lean = int(np.clip(np.rint(true_score[i]), -2, 2))
        topic = _TOPICS[topics[i]]
        text = (
            f"Chapter {i % 40 + 1}, passage {i + 1}: the book presents {topic} as "
            f"{_FRAMES_BY_LEAN[lean][0]}."
        )
        rows.append(
            {
                "passage_id": f"syn-{i + 1:05d}",
                "text": text,
                "publisher": publishers[passage_publisher[i]],
                "textbook": textbook_names[passage_textbook[i]],
                "topic": topic,
                "true_score": round(float(true_score[i]), 4),
                "true_publisher_effect": float(effects[passage_publisher[i]]),
                "true_biased": int(abs(true_score[i]) >= 0.75),
            }
        )
    return pd.DataFrame(rows)


def _centred(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Values minus their group mean, so each publisher's passages average exactly its effect
    (the known effects are realised in the corpus, not only in expectation)."""
    sums = np.bincount(groups, values)
    counts = np.bincount(groups)
    return values - (sums / np.maximum(counts, 1))[groups]


def simulate_ratings(
    corpus: pd.DataFrame,
    raters: Sequence[SimulatedRater] = DEFAULT_RATERS,
    *,
    seed: int = 0,
    round_to: float | None = None,
    missing_rate: float = 0.0,
) -> pd.DataFrame:
    """Ratings in the long table from in-process simulated raters (no LLM, no network).

    ``score = true_score + offset + noise``, clipped to [-2, 2] and optionally rounded to a
    grid (``round_to=0.5`` mimics LLM answers); ``biased`` is ``|score| >= 0.75``.
    ``missing_rate`` drops that share of ratings as failed rows (score missing, error set).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for rater in raters:
        n = len(corpus)
        score = corpus["true_score"].to_numpy(float) + rater.offset
        score = score + rng.normal(0.0, rater.noise, n)
        score = np.clip(score, -2.0, 2.0)
        if round_to:
            score = np.round(score / round_to) * round_to
        failed = rng.random(n) < missing_rate
        frame = pd.DataFrame(
            {
                "passage_id": corpus["passage_id"].to_numpy(),
                "publisher": corpus["publisher"].to_numpy(),
                "textbook": corpus["textbook"].to_numpy() if "textbook" in corpus else None,
                "rater": rater.name,
                "score": np.where(failed, np.nan, score),
                "biased": pd.array(
                    np.where(failed, pd.NA, (np.abs(score) >= 0.75).astype(int)), dtype="Int64"
                ),
                "confidence": np.where(failed, np.nan, 0.8),
                "explanation": "",
                "prompt_version": "simulated",
                "model": f"simulated/{rater.name}",
                "tokens": 0,
                "cost": 0.0,
                "latency": 0.0,
                "error": np.where(failed, "simulated_failure", ""),
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(RATINGS_COLUMNS)]
