"""Likelihood maths of the publisher-effects model on the binary and ordinal scales: passage
effects integrated out by Gauss-Hermite quadrature over grouped passage signatures (the interval
scale integrates every effect out analytically: ``assay.bias.collapsed``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.bias.design import ModelData, dense

PUBLISHER_PRIOR_SD = {"interval": 1.0, "binary": 1.5, "ordinal": 1.5}
"""Prior standard deviation of a publisher effect on each scale."""


QUADRATURE_NODES = 16


@dataclass
class Signatures:
    """Passages grouped by everything their likelihood depends on.

    Two passages with the same group (textbook, else publisher) and the same rating from every
    rater contribute identical marginal likelihoods once their passage effect is integrated
    out, so each distinct signature is computed once and weighted by its count. The
    per-rating log-likelihoods are evaluated once per (group, node, rater, value) and summed
    into signatures with one-hot arrays, which keeps the costly exp/log work small.
    """

    group: np.ndarray  # group index (0..G-1) of every signature
    group_passage: np.ndarray  # a passage index per group (for the group's mean)
    counts: np.ndarray  # passages per signature
    onehot: np.ndarray  # signatures x raters x values: 1 where the rater gave that value
    of_passage: np.ndarray  # signature index of every passage


def signatures(data: ModelData) -> Signatures:
    values, mask = dense(data)
    group = data.passage_textbook if data.passage_textbook is not None else data.passage_publisher
    key = np.column_stack([group, np.where(mask > 0, values, -1.0)])
    _, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    _, group_first, sig_group = np.unique(group[first], return_index=True, return_inverse=True)
    n_values = 2 if data.levels is None else len(data.levels)
    onehot = np.zeros((len(first), len(data.raters), n_values))
    u, r = np.nonzero(mask[first])
    onehot[u, r, values[first][u, r].astype(int)] = 1.0
    return Signatures(
        group=sig_group.ravel(),
        group_passage=first[group_first],
        counts=counts.astype(float),
        onehot=onehot,
        of_passage=inverse.ravel(),
    )


def quadrature() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log weights for E[f(Z)], Z ~ N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    return nodes, np.log(weights / math.sqrt(2 * math.pi))


def node_loglik(
    sig: Signatures,
    scale: str,
    passage_mean: Any,
    passage_sd: Any,
    offset: Any,
    rater_scale: Any,
    cutpoints: Any = None,
    n_levels: int = 2,
) -> Any:
    """log p(a signature's ratings | its passage effect at each quadrature node).

    Returns a signatures x nodes tensor. Binary: Bernoulli-logit. Ordinal: P(y = c) =
    sigmoid(cut_{c+1}/s - eta) - sigmoid(cut_c/s - eta) with padded outer cutpoints.
    """
    import pytensor.tensor as pt

    nodes, _ = quadrature()
    theta = passage_mean[sig.group_passage][:, None] + passage_sd * nodes[None, :]  # G x K
    eta = (theta[:, :, None] + offset[None, None, :]) / rater_scale[None, None, :]  # G x K x R
    if scale == "binary":
        per_value = pt.stack([-pt.softplus(eta), -pt.softplus(-eta)], axis=3)  # y = 0, 1
    else:
        outer = np.array([1e6])
        padded = pt.concatenate([-outer, cutpoints, outer])
        cut = padded[None, None, None, :] / rater_scale[None, None, :, None]
        log_cdf = -pt.softplus(eta[:, :, :, None] - cut)  # log P(y* <= cut): G x K x R x C+1
        upper, lower = log_cdf[..., 1:], log_cdf[..., :-1]
        per_value = upper + pt.log1mexp(pt.minimum(lower - upper, -1e-12))  # G x K x R x C
    # signatures x nodes: the group's per-value terms picked by each signature's ratings
    return (per_value[sig.group] * sig.onehot[:, None, :, :]).sum(axis=(2, 3))
