"""Publisher verdicts with a region of practical equivalence (ROPE) and a stated reference.

Rater offsets sum to zero, so a publisher effect is its passages' mean as the *average rater*
sees it: a bias shared by every rater shifts every publisher by the same amount. A verdict is
therefore always a statement about a difference from a named reference, and says which
assumption it rests on:

- ``average publisher``: effect minus the mean of all publisher effects (per posterior draw).
  A shared rater bias cancels; no assumption about the raters.
- ``publisher <name>`` (optional): effect minus that publisher's effect; a shared bias cancels.
- ``gold passages`` (interval scale, corpora with ``true_score``): the raters' shared bias is
  estimated on passages whose score is known and subtracted, giving the absolute scale.
  Assumes the gold scores are right and the shared bias is the same on every passage.
- ``zero (absolute)`` (interval scale): the effect itself against 0. Assumes the average rater
  is unbiased; shown for reading, never the headline verdict.

Decision rule (Kruschke's HDI+ROPE): the 95% HDI of the difference fully inside
[-rope, +rope] = practically equivalent; fully above +rope or fully below -rope = credibly
right/left (more/less biased, above/below); otherwise undecided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.bias.aggregate import Scale, valid_ratings

DEFAULT_ROPE: dict[str, float] = {"interval": 0.1, "binary": 0.18, "ordinal": 0.18}
ROPE_UNITS = {"interval": "score points", "binary": "logits", "ordinal": "latent logits"}
ROPE_JUSTIFICATION = {
    "interval": "0.1 points on the -2..+2 scale: a tenth of one step between adjacent labels "
    "(e.g. neutral -> slightly conservative) and 2.5% of the scale's range; differences "
    "smaller than that are not a lean a reader of the passages could notice",
    "binary": "0.18 logits: Kruschke's (2018) ROPE for logistic parameters, the logit "
    "equivalent of half a small standardised effect (0.1 x pi/sqrt(3)); about 4.5 percentage "
    "points of 'biased' near 50%",
    "ordinal": "0.18 latent logits: as for binary (Kruschke 2018), on the ordered-logistic "
    "latent scale",
}
ZERO_ASSUMPTION = "assumes the average rater is unbiased"
GOLD_ASSUMPTION = (
    "assumes the gold scores are correct and the raters' shared bias is the same on gold and "
    "other passages"
)
NO_RATER_ASSUMPTION = "a bias shared by all raters cancels; no assumption about the raters"

_WORDS = {
    "interval": ("credibly right (conservative) of", "credibly left (liberal) of"),
    "binary": ("credibly more biased than", "credibly less biased than"),
    "ordinal": ("credibly above", "credibly below"),
}


def rope_for(scale: Scale, rope: float | None = None) -> float:
    """The ROPE half-width: ``rope`` when given (> 0), else the scale's default."""
    return float(rope) if rope else DEFAULT_ROPE[scale]


def decide(low: float, high: float, rope: float) -> str:
    """The HDI+ROPE decision: equivalent, above, below or undecided."""
    if -rope <= low and high <= rope:
        return "equivalent"
    if low > rope:
        return "above"
    if high < -rope:
        return "below"
    return "undecided"


def label(scale: Scale, decision: str, reference: str, rope: float) -> str:
    above, below = _WORDS[scale]
    return {
        "above": f"{above} {reference}",
        "below": f"{below} {reference}",
        "equivalent": f"practically equivalent to {reference} (within +/-{rope:g})",
        "undecided": f"undecided vs {reference} (HDI overlaps the ROPE edge)",
    }[decision]


@dataclass(frozen=True)
class Reference:
    """A reference a verdict compares with: its name, its assumption, and the difference draws
    (samples x publishers) it produces from the effect draws."""

    name: str
    assumption: str
    difference: Callable[[np.ndarray], np.ndarray]


def gold_bias_draws(
    ratings: pd.DataFrame,
    passages: pd.DataFrame | None,
    raters: list[str],
    offset_draws: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int] | None:
    """Draws of the raters' shared bias b from gold passages (interval scale).

    Per posterior draw s: b_s = mean over gold passages of (mean of y - offset_s[rater]) minus
    the passage's true score, plus Normal noise with the standard error of that mean over gold
    passages (their finite number is a source of uncertainty). None without gold passages.
    """
    if passages is None or "true_score" not in passages:
        return None
    gold = passages.dropna(subset=["true_score"]).set_index("passage_id")["true_score"]
    valid = valid_ratings(ratings, "interval")
    valid = valid[valid["passage_id"].isin(gold.index) & valid["rater"].isin(raters)]
    if valid["passage_id"].nunique() < 2:
        return None
    rater_index = valid["rater"].map({r: i for i, r in enumerate(raters)}).to_numpy()
    passage_codes, passage_ids = pd.factorize(valid["passage_id"])
    n_gold = len(passage_ids)
    truth = gold.reindex(passage_ids).to_numpy(float)
    corrected = valid["value"].to_numpy(float)[None, :] - offset_draws[:, rater_index]
    counts = np.bincount(passage_codes, minlength=n_gold)
    per_passage = np.stack(
        [np.bincount(passage_codes, row, minlength=n_gold) / counts for row in corrected]
    )
    residual = per_passage - truth[None, :]
    se = residual.std(axis=1, ddof=1) / np.sqrt(n_gold)
    return residual.mean(axis=1) + se * rng.standard_normal(len(se)), n_gold


def references(
    scale: Scale,
    publishers: list[str],
    *,
    reference_publisher: str = "",
    gold_bias: np.ndarray | None = None,
) -> list[Reference]:
    """The references, headline first: gold passages, the named publisher, the average
    publisher; then the absolute reading with its assumption (interval only)."""
    refs: list[Reference] = []
    if scale == "interval" and gold_bias is not None:
        bias = gold_bias[:, None]
        refs.append(Reference("gold passages (absolute)", GOLD_ASSUMPTION, lambda d: d - bias))
    if reference_publisher:
        if reference_publisher not in publishers:
            raise ValueError(
                f"reference publisher {reference_publisher!r} is not among {publishers}"
            )
        j = publishers.index(reference_publisher)
        refs.append(
            Reference(
                f"publisher {reference_publisher}", NO_RATER_ASSUMPTION, lambda d: d - d[:, [j]]
            )
        )
    refs.append(
        Reference(
            "the average publisher",
            NO_RATER_ASSUMPTION
            + ("; effects sum to zero, so this is the effect itself" if scale == "ordinal" else ""),
            lambda d: d - d.mean(axis=1, keepdims=True),
        )
    )
    if scale == "interval":
        refs.append(Reference("zero (absolute)", ZERO_ASSUMPTION, lambda d: d))
    return refs


def verdicts_for(
    draws: np.ndarray,
    scale: Scale,
    refs: list[Reference],
    rope: float,
    hdi: Callable[[np.ndarray], tuple[float, float]],
) -> list[list[dict[str, Any]]]:
    """Per publisher (draws is samples x publishers), one verdict per reference."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(draws.shape[1])]
    for ref in refs:
        difference = ref.difference(draws)
        for j in range(draws.shape[1]):
            low, high = hdi(difference[:, j])
            decision = decide(low, high, rope)
            out[j].append(
                {
                    "reference": ref.name,
                    "assumption": ref.assumption,
                    "mean": float(difference[:, j].mean()),
                    "hdi_low": low,
                    "hdi_high": high,
                    "rope": [-rope, rope],
                    "decision": decision,
                    "verdict": label(scale, decision, ref.name, rope),
                }
            )
    return out


def rule_text(scale: Scale, rope: float) -> str:
    return (
        f"ROPE +/-{rope:g} {ROPE_UNITS[scale]} ({ROPE_JUSTIFICATION[scale]}). The 95% HDI of the "
        "difference from the reference fully inside the ROPE = practically equivalent; fully "
        "outside it = credibly right/left (more/less biased, above/below); else undecided. The "
        "headline verdict uses the first reference listed; each verdict names its reference "
        "and assumption."
    )
