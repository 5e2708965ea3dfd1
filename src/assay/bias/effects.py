"""Publisher effects with 95% HDIs and verdicts, rater offsets, and recovery of known truth.

Verdict rules (stated in summary.json too):

- interval: a publisher effect is its passages' mean score as the average rater sees it. The
  effect is "credibly right (conservative)" when its whole 95% HDI is above 0, "credibly left
  (liberal)" when below 0, otherwise "neutral (HDI includes 0)".
- binary: the contrast (effect minus the mean of all publisher effects, on the logit scale) is
  "credibly more biased than average" / "credibly less biased than average" when its HDI
  excludes 0, otherwise "not credibly different from average".
- ordinal: effects sum to zero, so they are contrasts already: "credibly above average" /
  "credibly below average" / "not credibly different from average".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.bias.aggregate import Scale, valid_ratings
from assay.bias.fit import HDI_PROB, FitResult

VERDICT_RULES = {
    "interval": "95% HDI of the effect (score scale, average rater) above 0 = credibly right, "
    "below 0 = credibly left, else neutral",
    "binary": "95% HDI of effect minus the mean publisher effect (logit) above 0 = credibly "
    "more biased than average, below 0 = credibly less biased, else not credibly different",
    "ordinal": "95% HDI of the sum-to-zero effect above 0 = credibly above average, below 0 = "
    "credibly below average, else not credibly different",
}


def _hdi(samples: np.ndarray) -> tuple[float, float]:
    """Narrowest interval holding HDI_PROB of the samples (last axis)."""
    ordered = np.sort(samples)
    n = len(ordered)
    width = int(np.floor(HDI_PROB * n))
    spans = ordered[width:] - ordered[: n - width]
    start = int(np.argmin(spans))
    return float(ordered[start]), float(ordered[start + width])


def _verdict(scale: Scale, low: float, high: float, c_low: float, c_high: float) -> str:
    if scale == "interval":
        if low > 0:
            return "credibly right (conservative)"
        if high < 0:
            return "credibly left (liberal)"
        return "neutral (HDI includes 0)"
    if scale == "binary":
        if c_low > 0:
            return "credibly more biased than average"
        if c_high < 0:
            return "credibly less biased than average"
        return "not credibly different from average"
    if low > 0:
        return "credibly above average"
    if high < 0:
        return "credibly below average"
    return "not credibly different from average"


def _draws(result: FitResult, name: str) -> np.ndarray:
    """Posterior draws as samples x coordinate."""
    array = result.idata.posterior[name].stack(sample=("chain", "draw"))
    return array.transpose(..., "sample").to_numpy()


def publisher_effects(result: FitResult, ratings: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per publisher: posterior mean, sd, HDI, contrast vs average, verdict, raw rate."""
    scale = result.data.scale
    draws = _draws(result, "publisher_effect")
    contrasts = draws - draws.mean(axis=0, keepdims=True)
    valid = valid_ratings(ratings, scale)
    raw = valid.groupby("publisher")["value"].mean()
    passages = valid.groupby("publisher")["passage_id"].nunique()
    rows = []
    for j, name in enumerate(result.data.publishers):
        low, high = _hdi(draws[j])
        c_low, c_high = _hdi(contrasts[j])
        rows.append(
            {
                "publisher": name,
                "mean": float(draws[j].mean()),
                "sd": float(draws[j].std()),
                "hdi_low": low,
                "hdi_high": high,
                "contrast_mean": float(contrasts[j].mean()),
                "contrast_hdi_low": c_low,
                "contrast_hdi_high": c_high,
                "verdict": _verdict(scale, low, high, c_low, c_high),
                "n_passages": int(passages.get(name, 0)),
                "raw_mean_rating": float(raw.get(name, np.nan)),
            }
        )
    return rows


def rater_parameters(result: FitResult) -> dict[str, list[dict[str, Any]]]:
    """Rater offsets (sum to zero) and scales with HDIs."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, key in (("rater_offset", "rater_offsets"), ("rater_scale", "rater_scales")):
        draws = _draws(result, name)
        rows = []
        for i, rater in enumerate(result.data.raters):
            low, high = _hdi(draws[i])
            rows.append(
                {"rater": rater, "mean": float(draws[i].mean()), "hdi_low": low, "hdi_high": high}
            )
        out[key] = rows
    return out


def hyperparameters(result: FitResult) -> dict[str, dict[str, float]]:
    out = {}
    for name in ("passage_sd", "textbook_sd"):
        if name in result.idata.posterior:
            draws = _draws(result, name)
            low, high = _hdi(draws)
            out[name] = {"mean": float(draws.mean()), "hdi_low": low, "hdi_high": high}
    return out


def recovery(
    effects: list[dict[str, Any]], passages: pd.DataFrame | None, scale: str = "interval"
) -> dict[str, Any] | None:
    """Do the 95% HDIs cover known publisher effects (synthetic corpora carry them)?

    Compared on contrasts (effect minus the mean of all publishers): a constant shared by all
    raters - such as the simulated raters' mean offset - cancels there, so the check does not
    depend on the raters' calibration.
    """
    if scale != "interval" or passages is None or "true_publisher_effect" not in passages:
        return None  # known effects are on the score scale
    truth = passages.groupby("publisher")["true_publisher_effect"].first()
    rows = [e for e in effects if e["publisher"] in truth.index]
    if not rows:
        return None
    true_mean = float(np.mean([truth[e["publisher"]] for e in rows]))
    checks = []
    for e in rows:
        true_contrast = float(truth[e["publisher"]]) - true_mean
        checks.append(
            {
                "publisher": e["publisher"],
                "true_effect": float(truth[e["publisher"]]),
                "true_contrast": true_contrast,
                "contrast_hdi": [e["contrast_hdi_low"], e["contrast_hdi_high"]],
                "covered": e["contrast_hdi_low"] <= true_contrast <= e["contrast_hdi_high"],
            }
        )
    return {
        "compared_on": "contrasts (effect minus mean of publishers)",
        "all_covered": all(c["covered"] for c in checks),
        "publishers": checks,
    }


def build_summary(
    result: FitResult,
    ratings: pd.DataFrame,
    *,
    passages: pd.DataFrame | None = None,
    ppc: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything summary.json holds."""
    data = result.data
    effects = publisher_effects(result, ratings)
    likelihood = {
        "interval": "Normal (passage effects integrated out analytically)"
        if "passage_z" not in result.idata.posterior
        else "Normal",
        "binary": "Bernoulli-logit",
        "ordinal": "ordered logistic",
    }[data.scale]
    return {
        "scale": data.scale,
        "model": {
            "likelihood": likelihood,
            "identification": "rater offsets sum to zero; no intercept beside publisher effects"
            + (
                "; publisher effects sum to zero (cutpoints carry the level)"
                if data.scale == "ordinal"
                else ""
            ),
            "n_ratings": len(data.y),
            "n_passages": len(data.passages),
            "n_raters": len(data.raters),
            "n_publishers": len(data.publishers),
            "n_textbooks": len(data.textbooks) if data.textbooks is not None else 0,
            "levels": None if data.levels is None else [float(v) for v in data.levels],
        },
        "sampler": {**(config or {}), "timings_s": result.timings},
        "diagnostics": result.diagnostics.as_dict(),
        "hdi_prob": HDI_PROB,
        "verdict_rule": VERDICT_RULES[data.scale],
        "publisher_effects": effects,
        **rater_parameters(result),
        "hyperparameters": hyperparameters(result),
        "predictive_checks": ppc,
        "recovery": recovery(effects, passages, data.scale),
    }
