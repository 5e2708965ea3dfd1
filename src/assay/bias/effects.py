"""Publisher effects with 95% HDIs and verdicts (ROPE + a stated reference, see
``assay.bias.verdicts``), rater offsets, textbook effects, and recovery of known truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.bias.aggregate import valid_ratings
from assay.bias.fit import HDI_PROB, FitResult
from assay.bias.sensitivity import prior_sensitivity
from assay.bias.verdicts import (
    ROPE_UNITS,
    Reference,
    gold_bias_draws,
    references,
    rope_for,
    rule_text,
    verdicts_for,
)


def _hdi(samples: np.ndarray) -> tuple[float, float]:
    """Narrowest interval holding HDI_PROB of the samples (last axis)."""
    ordered = np.sort(samples)
    n = len(ordered)
    width = int(np.floor(HDI_PROB * n))
    spans = ordered[width:] - ordered[: n - width]
    start = int(np.argmin(spans))
    return float(ordered[start]), float(ordered[start + width])


def _draws(result: FitResult, name: str) -> np.ndarray:
    """Posterior draws as samples x coordinate."""
    array = result.idata.posterior[name].stack(sample=("chain", "draw"))
    return array.transpose(..., "sample").to_numpy()


@dataclass(frozen=True)
class VerdictSettings:
    """How verdicts are made: the ROPE half-width (0 = the scale's default) and an optional
    reference publisher."""

    rope: float = 0.0
    reference_publisher: str = ""
    seed: int = 0


def _references(
    result: FitResult,
    ratings: pd.DataFrame,
    passages: pd.DataFrame | None,
    settings: VerdictSettings,
) -> tuple[list[Reference], dict[str, Any]]:
    """The verdict references and what the summary says about gold passages."""
    scale = result.data.scale
    gold = None
    if scale == "interval":
        rng = np.random.default_rng(settings.seed + 11)
        offsets = _draws(result, "rater_offset").T
        gold = gold_bias_draws(ratings, passages, result.data.raters, offsets, rng)
    refs = references(
        scale,
        result.data.publishers,
        reference_publisher=settings.reference_publisher,
        gold_bias=None if gold is None else gold[0],
    )
    if gold is None:
        note = {
            "available": False,
            "why": "no passages with a known true_score"
            if scale == "interval"
            else f"gold scores are on the -2..+2 scale; this study's scale is {scale}",
        }
    else:
        low, high = _hdi(gold[0])
        note = {
            "available": True,
            "n_gold_passages": gold[1],
            "shared_rater_bias_mean": float(gold[0].mean()),
            "shared_rater_bias_hdi": [low, high],
        }
    return refs, note


def publisher_effects(
    result: FitResult,
    ratings: pd.DataFrame,
    *,
    passages: pd.DataFrame | None = None,
    settings: VerdictSettings | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per publisher (posterior mean, sd, HDI, contrast vs average, verdicts with their
    reference and assumption, raw rate) and the verdict rule the rows follow."""
    settings = settings or VerdictSettings()
    scale = result.data.scale
    draws = _draws(result, "publisher_effect")
    contrasts = draws - draws.mean(axis=0, keepdims=True)
    valid = valid_ratings(ratings, scale)
    raw = valid.groupby("publisher")["value"].mean()
    n_passages = valid.groupby("publisher")["passage_id"].nunique()
    rope = rope_for(scale, settings.rope)
    refs, gold = _references(result, ratings, passages, settings)
    verdicts = verdicts_for(draws.T, scale, refs, rope, _hdi)
    rows = []
    for j, name in enumerate(result.data.publishers):
        low, high = _hdi(draws[j])
        c_low, c_high = _hdi(contrasts[j])
        headline = verdicts[j][0]
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
                "verdict": headline["verdict"],
                "verdict_reference": headline["reference"],
                "verdict_assumption": headline["assumption"],
                "verdicts": verdicts[j],
                "n_passages": int(n_passages.get(name, 0)),
                "raw_mean_rating": float(raw.get(name, np.nan)),
            }
        )
    rule = {
        "rule": rule_text(scale, rope),
        "rope": [-rope, rope],
        "rope_units": ROPE_UNITS[scale],
        "rope_is_default": not settings.rope,
        "references": [{"reference": r.name, "assumption": r.assumption} for r in refs],
        "gold_passages": gold,
    }
    return rows, rule


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


def textbook_effects(result: FitResult) -> list[dict[str, Any]]:
    """One row per textbook: its publisher, passages, posterior mean and 95% HDI (the textbook's
    deviation from its publisher's effect)."""
    data = result.data
    if (
        data.textbooks is None
        or data.passage_textbook is None
        or "textbook_effect" not in result.idata.posterior
    ):
        return []
    draws = _draws(result, "textbook_effect")
    counts = np.bincount(data.passage_textbook, minlength=len(data.textbooks))
    publisher_of = dict(zip(data.passage_textbook, data.passage_publisher, strict=True))
    rows = []
    for t, name in enumerate(data.textbooks):
        low, high = _hdi(draws[t])
        rows.append(
            {
                "textbook": name,
                "publisher": data.publishers[publisher_of[t]] if t in publisher_of else None,
                "n_passages": int(counts[t]),
                "mean": float(draws[t].mean()),
                "hdi_low": low,
                "hdi_high": high,
            }
        )
    return rows


RECOVERY_LABEL = (
    "one synthetic dataset whose effects the generator centres: a sanity check, not a coverage "
    "rate (coverage is measured by benchmarks/bayes_coverage.py on data drawn from the model; "
    "see the README's Coverage study)"
)


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
        "label": RECOVERY_LABEL,
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
    verdicts: VerdictSettings | None = None,
) -> dict[str, Any]:
    """Everything summary.json holds."""
    data = result.data
    effects, rule = publisher_effects(result, ratings, passages=passages, settings=verdicts)
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
        "verdict_rule": rule["rule"],
        "verdicts": rule,
        "publisher_effects": effects,
        **rater_parameters(result),
        "hyperparameters": hyperparameters(result),
        "textbook_effects": textbook_effects(result),
        "prior_sensitivity": prior_sensitivity(result),
        "predictive_checks": ppc,
        "recovery": recovery(effects, passages, data.scale),
    }
