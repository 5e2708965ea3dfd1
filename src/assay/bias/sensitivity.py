"""Prior sensitivity of the publisher effects, by importance reweighting of the posterior.

Each variant halves or doubles one prior scale (the hyperpriors of ``textbook_sd`` and
``passage_sd``, and the publisher-effect prior). Instead of refitting, the existing draws are
reweighted by the ratio of the new prior density to the old one (Pareto-smoothed importance
sampling, as in power-scaling sensitivity analysis): cheap, and exact in the limit of many
draws. The Pareto k of each variant says whether the reweighting can be trusted (k > 0.7: it
cannot, refit with that prior instead). Effects of models that integrated them out were drawn
from their exact conditional posterior per draw, so the reweighting covers them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assay.bias.likelihood import PUBLISHER_PRIOR_SD

HYPERPRIOR_SCALES: dict[str, dict[str, float]] = {
    "textbook_sd": {"interval": 0.5, "binary": 1.0, "ordinal": 1.0},
    "passage_sd": {"interval": 1.0, "binary": 1.0, "ordinal": 1.0},
}
"""The HalfNormal scales in ``assay.bias.priors.rater_and_spread`` (a test keeps them equal)."""

FACTORS = (0.5, 2.0)
PARETO_K_RELIABLE = 0.7


def _normal_log_ratio(x: np.ndarray, sigma: float, factor: float, dims: int) -> np.ndarray:
    """log N(x; 0, factor*sigma) - log N(x; 0, sigma), summed over ``dims`` dimensions
    (a HalfNormal has the same ratio)."""
    squared = x**2 if x.ndim == 1 else (x**2).sum(axis=1)
    return -dims * np.log(factor) + squared / (2 * sigma**2) * (1 - 1 / factor**2)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, q: list[float]) -> list[float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return [float(values[order][np.searchsorted(cumulative, p)]) for p in q]


def _draws(posterior: Any, name: str) -> np.ndarray | None:
    if name not in posterior:
        return None
    stacked = posterior[name].stack(sample=("chain", "draw"))
    return np.asarray(stacked.transpose("sample", ...).to_numpy())


def _variants(posterior: Any, scale: str) -> list[tuple[str, float, np.ndarray]]:
    """(prior, factor, log weight per draw) for every prior that the posterior holds."""
    out = []
    for name, scales in HYPERPRIOR_SCALES.items():
        draws = _draws(posterior, name)
        if draws is not None:
            for factor in FACTORS:
                out.append(
                    (
                        f"{name} hyperprior",
                        factor,
                        _normal_log_ratio(draws, scales[scale], factor, 1),
                    )
                )
    effects = _draws(posterior, "publisher_effect")
    if effects is not None:
        dims = effects.shape[1] - (1 if scale == "ordinal" else 0)  # zero-sum: one dim fewer
        for factor in FACTORS:
            log_ratio = _normal_log_ratio(effects, PUBLISHER_PRIOR_SD[scale], factor, dims)
            out.append(("publisher_effect prior", factor, log_ratio))
    return out


def prior_sensitivity(result: Any) -> dict[str, Any]:
    """How far the publisher effects move when each prior scale is halved or doubled."""
    import arviz as az

    posterior = result.idata.posterior
    scale = result.data.scale
    effects = _draws(posterior, "publisher_effect")
    if effects is None:
        return {"variants": []}
    contrasts = effects - effects.mean(axis=1, keepdims=True)
    base = effects.mean(axis=0)
    variants = []
    for prior, factor, log_ratio in _variants(posterior, scale):
        log_weights, k_hat = az.psislw(log_ratio - log_ratio.max())
        weights = np.exp(log_weights - log_weights.max())
        weights /= weights.sum()
        shifted = weights @ effects
        rows = []
        for j, publisher in enumerate(result.data.publishers):
            low, high = _weighted_quantiles(contrasts[:, j], weights, [0.025, 0.975])
            rows.append(
                {
                    "publisher": publisher,
                    "mean": float(shifted[j]),
                    "shift": float(shifted[j] - base[j]),
                    "contrast_interval_95": [low, high],
                }
            )
        variants.append(
            {
                "prior": prior,
                "scale_factor": factor,
                "pareto_k": float(k_hat),
                "reliable": bool(k_hat <= PARETO_K_RELIABLE),
                "max_abs_shift": float(np.max(np.abs(shifted - base))),
                "publishers": rows,
            }
        )
    return {
        "method": "Pareto-smoothed importance reweighting of the posterior draws to each prior "
        "(scale halved or doubled); intervals are weighted equal-tailed 95%; Pareto k > "
        f"{PARETO_K_RELIABLE} means refit instead",
        "variants": variants,
    }
