"""Likelihood maths of the publisher-effects model: random effects integrated out.

Interval scale: passage effects, and textbook effects when there are textbooks, are integrated
out analytically (the model is linear-Gaussian), so the sampler sees a handful of parameters.
Binary and ordinal scales: passage effects are integrated out by Gauss-Hermite quadrature over
grouped passage signatures. The same reductions give the exact conditional posteriors of the
integrated effects, drawn after sampling for reports and predictive checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy import sparse

from assay.bias.design import ModelData, dense

PUBLISHER_PRIOR_SD = {"interval": 1.0, "binary": 1.5, "ordinal": 1.5}
"""Prior standard deviation of a publisher effect on each scale."""


def passage_reduction(values: np.ndarray, mask: np.ndarray, offset: Any, sd: Any) -> Any:
    """Per-passage sufficient statistics of the Normal ratings given rater offsets and scales.

    For passage p with ratings y_pr, weights w_r = 1/sd_r^2 and W_p = sum_r w_r, let ybar_p
    be the weighted mean of y_pr - offset_r and SS_p the weighted within-passage sum of squares
    around it. Then, for any passage effect theta_p,

        prod_r N(y_pr | theta_p + offset_r, sd_r)
          = prod_r (2 pi sd_r^2)^(-1/2) * exp(-SS_p / 2) * sqrt(2 pi / W_p)
            * N(ybar_p | theta_p, 1 / sqrt(W_p)).

    Returns (the log of everything but the last factor, summed over passages; ybar; W). Every
    per-passage sum is a constant passages x raters matrix times a rater vector.
    """
    import pytensor.tensor as pt

    ratings, squares = values * mask, values**2 * mask
    weight = 1.0 / sd**2
    total_weight = pt.dot(mask, weight)
    weighted_sum = pt.dot(ratings, weight) - pt.dot(mask, weight * offset)
    weighted_squares = (
        pt.dot(squares, weight)
        - 2 * pt.dot(ratings, weight * offset)
        + pt.dot(mask, weight * offset**2)
    )
    mean = weighted_sum / total_weight
    within = weighted_squares - total_weight * mean**2
    n_per_rater = mask.sum(axis=0)
    rater_terms = -0.5 * (n_per_rater * (math.log(2 * math.pi) + 2 * pt.log(sd))).sum()
    constant = rater_terms + (-0.5 * within - 0.5 * pt.log(total_weight)).sum()
    return constant, mean, total_weight


def marginal_normal_logp(
    values: np.ndarray, mask: np.ndarray, passage_mean: Any, passage_sd: Any, offset: Any, sd: Any
) -> Any:
    """log p(ratings | parameters) with every passage effect integrated out.

    With theta_p ~ N(m_p, tau) the last factor of ``passage_reduction`` integrates to
    N(ybar_p | m_p, sqrt(1/W_p + tau^2)) (dropping the constant 2 pi terms, here and below).
    """
    import pytensor.tensor as pt

    constant, mean, total_weight = passage_reduction(values, mask, offset, sd)
    marginal_var = 1.0 / total_weight + passage_sd**2
    between = -0.5 * (pt.log(marginal_var) + (mean - passage_mean) ** 2 / marginal_var)
    return constant + between.sum()


DENSE_GROUPING_MAX = 100_000
"""Units x groups entries up to which group sums use a dense matrix (600 passages x 60
textbooks: 36,000; the seed scale's 4,500 x 150 = 675,000 uses segment sums)."""


@dataclass(frozen=True)
class Grouping:
    """Which group each unit belongs to; sums over the units of each group.

    Segment sums cost O(units) per gradient evaluation, where a dense units x groups product
    costs O(units x groups) (4,500 passages x 150 textbooks at seed scale: sampling took 86 s
    instead of 9 s); but segment sums compile several times slower, which dominates small fits.
    """

    index: np.ndarray
    n_groups: int

    def sum_tensor(self, x: Any) -> Any:
        """Per-group sums of a pytensor vector: a dense 0/1 matrix product for small designs
        (it compiles in a fraction of the time), segment sums above ``DENSE_GROUPING_MAX``."""
        import pytensor.tensor as pt

        if len(self.index) * self.n_groups <= DENSE_GROUPING_MAX:
            return pt.dot(x, self._dense)
        return pt.inc_subtensor(pt.zeros(self.n_groups)[self.index], x)

    def sum_array(self, x: np.ndarray) -> np.ndarray:
        """Per-group sums over the last axis of a numpy array (draws x units)."""
        return np.asarray((self._sparse @ x.T).T)

    @cached_property
    def _dense(self) -> np.ndarray:
        matrix = np.zeros((len(self.index), self.n_groups))
        matrix[np.arange(len(self.index)), self.index] = 1.0
        return matrix

    @cached_property
    def _sparse(self) -> Any:
        units = len(self.index)
        ones = np.ones(units)
        return sparse.csr_matrix(
            (ones, (self.index, np.arange(units))), shape=(self.n_groups, units)
        )


def gaussian_level(
    x: Any, var: Any, group_sum: Callable[[Any], Any], log: Any
) -> tuple[Any, Any, Any]:
    """Reduce units to their groups: prod_i N(x_i | b_g(i), sqrt(var_i)) as a function of the
    group effects b is exp(constant) * prod_g N(xbar_g | b_g, 1/sqrt(U_g)) up to 2 pi terms,
    with u_i = 1/var_i, U_g = sum u_i, xbar_g the u-weighted mean and

        constant = -1/2 (sum_i log var_i + sum_i u_i (x_i - xbar_g(i))^2 + sum_g log U_g).

    Works on pytensor vectors (``Grouping.sum_tensor``, ``log=pt.log``) and on numpy arrays with
    a leading draw dimension (``Grouping.sum_array``, ``log=np.log``). Returns (constant summed
    over units and groups, xbar, U).
    """
    u = 1.0 / var
    u_total = group_sum(u)
    xbar = group_sum(u * x) / u_total
    spread = group_sum(u * x**2) - u_total * xbar**2
    constant = -0.5 * (log(var).sum(axis=-1) + spread.sum(axis=-1) + log(u_total).sum(axis=-1))
    return constant, xbar, u_total


@dataclass(frozen=True)
class Nesting:
    """Which textbook each passage is in and which publisher each group above passages is in."""

    passage_textbook: Grouping | None  # None without textbooks
    group_publisher: Grouping  # of textbooks, or of passages without textbooks

    @classmethod
    def of(cls, data: ModelData) -> Nesting:
        pub = len(data.publishers)
        if data.passage_textbook is None or data.textbooks is None:
            return cls(None, Grouping(data.passage_publisher, pub))
        first = np.unique(data.passage_textbook, return_index=True)[1]
        textbook_publisher = data.passage_publisher[first]
        return cls(
            Grouping(data.passage_textbook, len(data.textbooks)),
            Grouping(textbook_publisher, pub),
        )


def collapsed_normal_logp(
    values: np.ndarray,
    mask: np.ndarray,
    nesting: Nesting,
    passage_sd: Any,
    textbook_sd: Any,
    publisher_sd: float,
    offset: Any,
    sd: Any,
) -> Any:
    """log p(ratings | rater parameters and standard deviations) with passage, textbook and
    publisher effects all integrated out (up to a constant).

    The interval model is linear-Gaussian at every level, so the reduction of
    ``passage_reduction`` repeats upwards (``gaussian_level``): passages' weighted means are
    Normal around their textbook's effect with variance 1/W_p + passage_sd^2, textbooks'
    around their publisher's with 1/U_t + textbook_sd^2, and publishers' around 0 with
    1/Q_j + publisher_sd^2. The sampler sees only the rater offsets and scales and the two
    standard deviations: no funnel couples group effects to their scale, whatever the design.
    """
    import pytensor.tensor as pt

    total, x, weight = passage_reduction(values, mask, offset, sd)
    var = 1.0 / weight + passage_sd**2
    if nesting.passage_textbook is not None:
        constant, x, u_total = gaussian_level(x, var, nesting.passage_textbook.sum_tensor, pt.log)
        total = total + constant
        var = 1.0 / u_total + textbook_sd**2
    constant, x, q_total = gaussian_level(x, var, nesting.group_publisher.sum_tensor, pt.log)
    var = 1.0 / q_total + publisher_sd**2
    return total + constant - 0.5 * (pt.log(var) + x**2 / var).sum()


def _normal_draw(
    precision: np.ndarray, weighted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    return weighted / precision + rng.standard_normal(precision.shape) / np.sqrt(precision)


def collapsed_effect_draws(
    data: ModelData,
    params: dict[str, np.ndarray],
    publisher_sd: float,
    rng: np.random.Generator,
    chunk: int = 256,
) -> dict[str, np.ndarray]:
    """Publisher (and textbook) effects from their exact conditional posteriors, one per
    posterior draw of the parameters ``collapsed_normal_logp`` keeps (draws x effects).

    Publisher j: N(Q_j xbar_j / (Q_j + 1/publisher_sd^2), 1/(Q_j + 1/publisher_sd^2)); then
    textbook t given its publisher's effect mu: N(U_t (xbar_t - mu) / (U_t + 1/textbook_sd^2),
    1/(U_t + 1/textbook_sd^2)).
    """
    values, mask = dense(data)
    nesting = Nesting.of(data)
    n_draws = len(params["passage_sd"])
    publishers = np.empty((n_draws, len(data.publishers)))
    textbooks = np.empty((n_draws, len(data.textbooks or [])))
    for start in range(0, n_draws, chunk):
        s = slice(start, start + chunk)
        weight = 1.0 / params["rater_scale"][s] ** 2
        total_weight = weight @ mask.T
        weighted_sum = weight @ (values * mask).T - (weight * params["rater_offset"][s]) @ mask.T
        x, var = (
            weighted_sum / total_weight,
            1.0 / total_weight + params["passage_sd"][s, None] ** 2,
        )
        if nesting.passage_textbook is not None:
            _, x_t, u_t = gaussian_level(x, var, nesting.passage_textbook.sum_array, np.log)
            x, var = x_t, 1.0 / u_t + params["textbook_sd"][s, None] ** 2
        _, x_j, q_j = gaussian_level(x, var, nesting.group_publisher.sum_array, np.log)
        mu = _normal_draw(q_j + 1.0 / publisher_sd**2, q_j * x_j, rng)
        publishers[s] = mu
        if nesting.passage_textbook is not None:
            prior = 1.0 / params["textbook_sd"][s, None] ** 2
            parent = mu[:, nesting.group_publisher.index]
            textbooks[s] = _normal_draw(u_t + prior, u_t * (x_t - parent), rng)
    out = {"publisher_effect": publishers}
    if nesting.passage_textbook is not None:
        out["textbook_effect"] = textbooks
    return out


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
