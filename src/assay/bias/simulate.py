"""Ratings drawn from the interval model itself, for calibration studies.

Unlike the demo corpus (``assay.bias.synthetic``), nothing is centred: publisher effects,
textbook effects (Normal(0, textbook_sd) within each publisher), passage effects
(Normal(0, passage_sd) within each textbook), zero-sum rater offsets and per-rater noise are
drawn independently, exactly as ``assay.bias.models`` writes the model down, so a fit's
intervals should cover the drawn values at their nominal rate. ``Misspecification`` bends the
ratings in ways the model does not describe, to see how far coverage falls:

- ``integer``: scores rounded to the -2..+2 integer grid (rounded, then clipped);
- ``clip``: scores clipped at +-2 (continuous otherwise);
- ``mnar``: a rater refuses a passage with probability ``expit(a + b |score|)`` - strong
  content is refused more - and refused ratings are missing (not at random);
- ``interaction``: rater r reads publisher j with an extra ``gamma[r, j]``, drawn
  Normal(0, ``interaction_sd``) and centred over raters and over publishers, so the average
  rater's view of each publisher and each rater's average offset are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from assay.bias.design import ModelData

Variant = Literal["well-specified", "integer", "clip", "mnar", "interaction"]
VARIANTS: tuple[Variant, ...] = ("well-specified", "integer", "clip", "mnar", "interaction")

MNAR_INTERCEPT = -3.0
MNAR_SLOPE = 2.0
"""Refusal probability ``expit(-3 + 2 |score|)``: 5% at 0, 27% at +-1, 73% at +-2."""

INTERACTION_SD = 0.5


@dataclass(frozen=True)
class Design:
    """A balanced design: every rater rates every passage."""

    publishers: int = 5
    textbooks_per_publisher: int = 6
    passages_per_textbook: int = 10
    raters: int = 3

    @property
    def n_textbooks(self) -> int:
        return self.publishers * self.textbooks_per_publisher

    @property
    def n_passages(self) -> int:
        return self.n_textbooks * self.passages_per_textbook

    def describe(self) -> str:
        return (
            f"{self.publishers} publishers x {self.textbooks_per_publisher} textbooks x "
            f"{self.passages_per_textbook} passages x {self.raters} raters "
            f"({self.n_passages} passages, {self.n_passages * self.raters} ratings)"
        )


@dataclass(frozen=True)
class Hyper:
    """The sampled parameters of the marginalised interval model (one draw)."""

    textbook_sd: float
    passage_sd: float
    rater_offset: np.ndarray  # sums to zero
    rater_scale: np.ndarray


@dataclass(frozen=True)
class Truth:
    """Every drawn value a fit could be checked against."""

    hyper: Hyper
    publisher_effect: np.ndarray
    textbook_effect: np.ndarray
    passage_effect: np.ndarray  # theta_p: publisher + textbook + passage deviation


def names(design: Design) -> dict[str, list[str]]:
    """Publisher, textbook, passage and rater names; sorted order equals index order, so
    ``assay.bias.design.prepare`` codes them with the indices used here."""
    publishers = [f"pub-{j:02d}" for j in range(design.publishers)]
    textbooks = [
        f"{publishers[j]} / tb-{k:02d}"
        for j in range(design.publishers)
        for k in range(design.textbooks_per_publisher)
    ]
    passages = [f"p-{i:05d}" for i in range(design.n_passages)]
    raters = [f"rater-{r}" for r in range(design.raters)]
    return {"publisher": publishers, "textbook": textbooks, "passage": passages, "rater": raters}


def passage_textbook(design: Design) -> np.ndarray:
    return np.arange(design.n_passages) // design.passages_per_textbook


def textbook_publisher(design: Design) -> np.ndarray:
    return np.arange(design.n_textbooks) // design.textbooks_per_publisher


def draw_effects(
    design: Design, hyper: Hyper, publisher_sd: float, rng: np.random.Generator
) -> Truth:
    """Group effects from their (uncentred) model distributions given the hyperparameters."""
    publisher = rng.normal(0.0, publisher_sd, design.publishers)
    textbook = rng.normal(0.0, hyper.textbook_sd, design.n_textbooks)
    tb = passage_textbook(design)
    mean = publisher[textbook_publisher(design)][tb] + textbook[tb]
    theta = mean + rng.normal(0.0, hyper.passage_sd, design.n_passages)
    return Truth(hyper, publisher, textbook, theta)


def _interaction(design: Design, rng: np.random.Generator) -> np.ndarray:
    gamma = rng.normal(0.0, INTERACTION_SD, (design.raters, design.publishers))
    gamma -= gamma.mean(axis=0, keepdims=True)
    return gamma - gamma.mean(axis=1, keepdims=True)


def draw_scores(
    design: Design, truth: Truth, variant: Variant, rng: np.random.Generator
) -> np.ndarray:
    """Passages x raters scores (NaN where refused) under ``variant``."""
    hyper = truth.hyper
    shape = (design.n_passages, design.raters)
    noise = rng.standard_normal(shape) * hyper.rater_scale[None, :]
    score = truth.passage_effect[:, None] + hyper.rater_offset[None, :] + noise
    if variant == "interaction":
        publisher = textbook_publisher(design)[passage_textbook(design)]
        score = score + _interaction(design, rng)[:, publisher].T
    if variant == "integer":
        score = np.clip(np.rint(score), -2.0, 2.0)
    if variant == "clip":
        score = np.clip(score, -2.0, 2.0)
    if variant == "mnar":
        refuse = rng.random(shape) < 1.0 / (
            1.0 + np.exp(-(MNAR_INTERCEPT + MNAR_SLOPE * abs(score)))
        )
        score = np.where(refuse, np.nan, score)
    return score


def model_data(design: Design, scores: np.ndarray) -> tuple[ModelData, np.ndarray]:
    """The interval ``ModelData`` of passages x raters scores (NaN = missing) and the indices
    of the passages kept: a passage no rater scored leaves the data, as in a study (its
    textbook and publisher too, when nothing of them is left)."""
    labels = names(design)
    present = ~np.isnan(scores)
    kept = np.flatnonzero(present.any(axis=1))
    tb_all = passage_textbook(design)[kept]
    pub_all = textbook_publisher(design)[tb_all]
    textbooks, tb_index = np.unique(tb_all, return_inverse=True)
    publishers, pub_index = np.unique(pub_all, return_inverse=True)
    obs_passage, obs_rater = np.nonzero(present[kept])
    data = ModelData(
        scale="interval",
        publishers=[labels["publisher"][j] for j in publishers],
        raters=labels["rater"],
        passages=[labels["passage"][i] for i in kept],
        textbooks=[labels["textbook"][t] for t in textbooks],
        passage_publisher=pub_index.astype(int),
        passage_textbook=tb_index.astype(int),
        obs_passage=obs_passage.astype(int),
        obs_rater=obs_rater.astype(int),
        y=scores[kept][obs_passage, obs_rater].astype(float),
    )
    return data, kept
