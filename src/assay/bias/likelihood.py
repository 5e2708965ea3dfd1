"""Likelihood maths of the publisher-effects model on the binary and ordinal scales: passage
effects integrated out by Gauss-Hermite quadrature over pooled rating patterns (the interval
scale integrates every effect out analytically: ``assay.bias.collapsed``).

Passages in the same group (textbook, else publisher) with the same rating from every rater
contribute identical quadrature terms, so ``RatingPatterns.pooled`` keeps each distinct
pattern once with its passage count, as ``RatingCells.pooled`` does for the interval scale;
``RatingPatterns.per_passage`` keeps every passage (the reference the pooled form is tested
and benchmarked against). One function, ``quadrature_logp``, evaluates either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.bias.collapsed import Grouping, Nesting
from assay.bias.design import ModelData, dense

PUBLISHER_PRIOR_SD = {"interval": 1.0, "binary": 1.5, "ordinal": 1.5}
"""Prior standard deviation of a publisher effect on each scale."""


QUADRATURE_NODES = 64
"""Gauss-Hermite order. The integrand turns from 0 to 1 within rater_scale / passage_sd prior
sds; on BABE's binary posterior that is a quarter, where 16 nodes missed the log density by 4
(its gradient by 39) and 64 miss it by 0.002 (0.08), against 256."""
NEGLIGIBLE_WEIGHT = 1e-15
"""Nodes of smaller weight are dropped (24 of 64, all beyond 8 sds): the integrand is a
probability, at most 1, so the integral loses less than their summed weight, 1e-14."""


@dataclass(frozen=True)
class RatingPatterns:
    """What the quadrature likelihood needs of the ratings: units of passages with the same
    group and the same (rater, answer) pairs, and for each unit where its answers sit in the
    table of per-(group, rater, answer) log-likelihoods.

    ``cells`` holds, per unit, the flat index ``(group * raters + rater) * values + answer``
    of each of its ratings, padded with ``pad`` (the index of a row of zeros) up to the most
    ratings any unit has, so a unit's log-likelihood at a node is one gather and one sum.
    """

    group: Grouping  # unit -> group
    count: np.ndarray  # passages per unit
    cells: np.ndarray  # units x max ratings per unit: flat table indices, ``pad`` where none
    of_passage: np.ndarray  # unit of every passage
    n_raters: int
    n_values: int

    @property
    def pad(self) -> int:
        return self.group.n_groups * self.n_raters * self.n_values

    @classmethod
    def pooled(
        cls, values: np.ndarray, mask: np.ndarray, group: Grouping, n_values: int
    ) -> RatingPatterns:
        """One unit per distinct (group, answers) pattern, weighted by its passage count."""
        key = np.column_stack([group.index, np.where(mask > 0, values, -1.0)])
        _, first, unit, counts = np.unique(
            key, axis=0, return_index=True, return_inverse=True, return_counts=True
        )
        return cls._of(values[first], mask[first], group, first, n_values, counts, unit.ravel())

    @classmethod
    def per_passage(
        cls, values: np.ndarray, mask: np.ndarray, group: Grouping, n_values: int
    ) -> RatingPatterns:
        """One unit per passage."""
        passages = np.arange(len(group.index))
        ones = np.ones(len(passages), int)
        return cls._of(values, mask, group, passages, n_values, ones, passages)

    @classmethod
    def _of(
        cls,
        values: np.ndarray,
        mask: np.ndarray,
        group: Grouping,
        passage: np.ndarray,
        n_values: int,
        counts: np.ndarray,
        of_passage: np.ndarray,
    ) -> RatingPatterns:
        units, n_raters = mask.shape
        unit_group = group.index[passage]
        unit, rater = np.nonzero(mask)
        flat = (unit_group[unit] * n_raters + rater) * n_values + values[unit, rater].astype(int)
        per_unit = np.bincount(unit, minlength=units)
        slot = np.arange(len(unit)) - np.repeat(np.cumsum(per_unit) - per_unit, per_unit)
        cells = np.full((units, max(int(per_unit.max(initial=0)), 1)), -1)
        cells[unit, slot] = flat
        patterns = cls(
            group=Grouping(unit_group, group.n_groups),
            count=counts.astype(float),
            cells=cells,
            of_passage=of_passage,
            n_raters=n_raters,
            n_values=n_values,
        )
        cells[cells < 0] = patterns.pad
        return patterns

    @classmethod
    def of(cls, data: ModelData, *, pooled: bool = True) -> RatingPatterns:
        """The study's ratings grouped by textbook (else publisher), pooled or per passage."""
        values, mask = dense(data)
        n_values = 2 if data.levels is None else len(data.levels)
        build = cls.pooled if pooled else cls.per_passage
        return build(values, mask, Nesting.of(data).passage_group, n_values)


def group_first_passage(data: ModelData) -> np.ndarray:
    """A passage of every group (textbook, else publisher), in group order: where to read each
    group's mean from the per-passage means."""
    group = Nesting.of(data).passage_group.index
    return np.unique(group, return_index=True)[1]


def quadrature() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log weights for E[f(Z)], Z ~ N(0, 1), without the nodes of
    weight below ``NEGLIGIBLE_WEIGHT``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    weights = weights / math.sqrt(2 * math.pi)
    kept = weights >= NEGLIGIBLE_WEIGHT
    return nodes[kept], np.log(weights[kept])


def answer_loglik(
    scale: str,
    group_mean: Any,
    passage_sd: Any,
    offset: Any,
    rater_scale: Any,
    cutpoints: Any = None,
) -> Any:
    """log p(answer | a passage effect at each quadrature node of its group): a groups x nodes
    x raters x answers tensor. Binary: Bernoulli-logit. Ordinal, with k_c = cut_c / s and padded
    outer cutpoints: P(y = c) = sigmoid(k_{c+1} - eta) - sigmoid(k_c - eta)
    = sigmoid(k_{c+1} - eta) sigmoid(eta - k_c) (1 - exp(k_c - k_{c+1})), whose last factor
    does not depend on the passage (computed per rater and answer, not per node)."""
    import pytensor.tensor as pt

    nodes, _ = quadrature()
    theta = group_mean[:, None] + passage_sd * nodes[None, :]  # G x K
    eta = (theta[:, :, None] + offset[None, None, :]) / rater_scale[None, None, :]  # G x K x R
    if scale == "binary":
        return pt.stack([-pt.softplus(eta), -pt.softplus(-eta)], axis=3)  # y = 0, 1
    outer = np.array([1e6])
    padded = pt.concatenate([-outer, cutpoints, outer])
    cut = padded[None, :] / rater_scale[:, None]  # R x C+1
    lower, upper = cut[:, :-1], cut[:, 1:]
    gap = pt.log1mexp(pt.minimum(lower - upper, -1e-12))  # R x C
    eta = eta[:, :, :, None]
    return -pt.softplus(eta - upper) - pt.softplus(lower - eta) + gap  # G x K x R x C


def data_input(name: str, values: np.ndarray) -> Any:
    """The array as an input of the compiled model rather than a constant inside it.

    PyTensor keys its numba cache by the graph, constants included: with the ratings as
    constants every dataset compiles afresh, with them as inputs a model of the same dimensions
    (publishers, raters, textbooks, levels) reuses the compiled code. On BABE's binary model:
    20 s for new ratings with the constants, 11 s with the inputs, 48 s from an empty cache.
    """
    import pytensor

    return pytensor.shared(np.ascontiguousarray(values), name=name)


def node_loglik(patterns: RatingPatterns, per_answer: Any) -> Any:
    """log p(a unit's ratings | its passage effect at each node): units x nodes, from
    ``answer_loglik``'s table (one row per (group, rater, answer), a zero row for padding)."""
    import pytensor.tensor as pt

    nodes = per_answer.shape[1]
    table = per_answer.transpose(0, 2, 3, 1).reshape((-1, nodes))
    table = pt.concatenate([table, pt.zeros((1, nodes))], axis=0)
    cells = data_input("rating_pattern_cells", patterns.cells)
    picked = table[cells.ravel()].reshape((cells.shape[0], cells.shape[1], nodes))
    return picked.sum(axis=1)


def quadrature_logp(patterns: RatingPatterns, per_answer: Any) -> Any:
    """log p(ratings | group means and rater parameters), passage effects integrated out:
    sum over units of count x log sum_k w_k p(unit's ratings | node k)."""
    import pymc as pm

    _, log_weights = quadrature()
    per_node = node_loglik(patterns, per_answer) + log_weights
    count = data_input("rating_pattern_count", patterns.count)
    return (count * pm.math.logsumexp(per_node, axis=1).flatten()).sum()
