"""The interval-scale likelihood with every group effect integrated out, from sufficient
statistics.

The interval model is linear-Gaussian at every level, so passage, textbook and publisher effects
integrate out analytically and the sampler sees only the rater offsets and scales and two
standard deviations. Passages that share a group (textbook, else publisher) and the set of
raters who rated them enter the likelihood only through a few sums (``RatingCells``): at the
seed's scale 4,500 passages pool into 150 cells, so a gradient costs per cell, not per rating.
The same reductions give the exact conditional posteriors of the effects, drawn after sampling.
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

DENSE_GROUPING_MAX = 100_000
"""Units x groups entries up to which group sums use a dense matrix (600 passages x 60
textbooks: 36,000; 4,500 per-passage units x 150 textbooks = 675,000 use segment sums)."""


@dataclass(frozen=True)
class Grouping:
    """Which group each unit belongs to; sums over the units of each group.

    Segment sums cost O(units) per gradient evaluation, where a dense units x groups product
    costs O(units x groups); but segment sums compile several times slower, which dominates
    small fits.
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


@dataclass(frozen=True)
class Nesting:
    """Which group each passage is in (textbook, else publisher) and, with textbooks, which
    publisher each textbook is in."""

    passage_group: Grouping
    textbook_publisher: Grouping | None  # None without textbooks

    @classmethod
    def of(cls, data: ModelData) -> Nesting:
        pub = len(data.publishers)
        if data.passage_textbook is None or data.textbooks is None:
            return cls(Grouping(data.passage_publisher, pub), None)
        first = np.unique(data.passage_textbook, return_index=True)[1]
        textbook_publisher = data.passage_publisher[first]
        return cls(
            Grouping(data.passage_textbook, len(data.textbooks)),
            Grouping(textbook_publisher, pub),
        )


@dataclass(frozen=True)
class RatingCells:
    """What the interval likelihood needs of the ratings: for each cell of passages with the
    same group and the same rating weights (1 rated, 0 not), the passage count n and, per
    rater r and s, the sums over its passages of m_r y_r, m_r y_r^2 and m_r y_r m_s y_s.

    ``pooled`` builds them from constant ratings (a cell per group and rater pattern);
    ``per_passage`` makes every passage its own cell and accepts pytensor ratings (``pm.Data``
    swapped between fits).
    """

    grouping: Grouping  # cell -> group of passages
    count: Any  # cells
    weights: Any  # cells x raters
    sums: Any  # cells x raters
    squares: Any  # cells x raters
    cross: Any  # cells x raters x raters; None for one passage per cell: the outer product of sums

    @classmethod
    def pooled(cls, values: np.ndarray, mask: np.ndarray, group: Grouping) -> RatingCells:
        key = np.column_stack([group.index, mask])
        _, first, cell, counts = np.unique(
            key, axis=0, return_index=True, return_inverse=True, return_counts=True
        )
        cell = cell.ravel()

        def summed(x: np.ndarray) -> np.ndarray:
            out = np.zeros((len(counts), *x.shape[1:]))
            np.add.at(out, cell, x)
            return out

        rated = values * mask
        return cls(
            grouping=Grouping(group.index[first], group.n_groups),
            count=counts.astype(float),
            weights=mask[first],
            sums=summed(rated),
            squares=summed(values**2 * mask),
            cross=summed(rated[:, :, None] * rated[:, None, :]),
        )

    @classmethod
    def per_passage(cls, values: Any, mask: Any, group: Grouping) -> RatingCells:
        rated = values * mask
        return cls(
            grouping=group,
            count=np.ones(len(group.index)),
            weights=mask,
            sums=rated,
            squares=values**2 * mask,
            cross=None,
        )


def passage_level(cells: RatingCells, offset: Any, sd: Any) -> tuple[Any, Any, Any, Any]:
    """The ratings reduced to their passages' weighted means, per cell.

    For passage p, with w_r = 1/sd_r^2, W_p = sum_r m_pr w_r and ybar_p the weighted mean of
    y_pr - offset_r, and any passage effect theta_p:

        prod_r N(y_pr | theta_p + offset_r, sd_r)^m_pr
          = prod_r (2 pi sd_r^2)^(-m_pr/2) * exp(-SS_p / 2) * sqrt(2 pi / W_p)
            * N(ybar_p | theta_p, 1 / sqrt(W_p)),

    SS_p the weighted within-passage sum of squares around ybar_p. All passages of a cell share
    W; their sums of ybar_p and ybar_p^2 and of SS_p follow from the cell's sums. Returns (the
    log of everything but the last factor, summed; per cell: sum of ybar, sum of ybar^2, W).
    """
    import pytensor.tensor as pt

    weight = 1.0 / sd**2
    weighted_offset = weight * offset
    total_weight = pt.dot(cells.weights, weight)
    offset_sum = pt.dot(cells.weights, weighted_offset)
    rating_sum = pt.dot(cells.sums, weight)
    linear = rating_sum - cells.count * offset_sum
    squares = (
        pt.dot(cells.squares, weight)
        - 2 * pt.dot(cells.sums, weighted_offset)
        + cells.count * pt.dot(cells.weights, weighted_offset * offset)
    )
    if cells.cross is None:
        weighted_cross = rating_sum**2
    else:
        weighted_cross = (cells.cross * weight[None, :, None] * weight[None, None, :]).sum((1, 2))
    cross = weighted_cross - 2 * offset_sum * rating_sum + cells.count * offset_sum**2
    within = squares - cross / total_weight
    ratings_per_rater = pt.dot(cells.count, cells.weights)
    rater_terms = -0.5 * (ratings_per_rater * (math.log(2 * math.pi) + 2 * pt.log(sd))).sum()
    constant = rater_terms + (-0.5 * within - 0.5 * cells.count * pt.log(total_weight)).sum()
    return constant, linear / total_weight, cross / total_weight**2, total_weight


def pooled_gaussian_level(
    count: Any,
    sum_x: Any,
    sum_x2: Any,
    var: Any,
    group_sum: Callable[[Any], Any],
    log: Any,
) -> tuple[Any, Any, Any]:
    """Reduce units to their groups: prod_i N(x_i | b_g(i), sqrt(var_i)) as a function of the
    group effects b is exp(constant) * prod_g N(xbar_g | b_g, 1/sqrt(U_g)) up to 2 pi terms,
    with u_i = 1/var_i, U_g = sum u_i, xbar_g the u-weighted mean and

        constant = -1/2 (sum_i log var_i + sum_i u_i (x_i - xbar_g(i))^2 + sum_g log U_g).

    Units come pooled: ``count`` units with the same variance, the sum of their x and of x^2.
    Works on pytensor vectors (``Grouping.sum_tensor``, ``log=pt.log``) and on numpy arrays with
    a leading draw dimension (``Grouping.sum_array``, ``log=np.log``). Returns (constant summed
    over units and groups, xbar, U).
    """
    u = 1.0 / var
    u_total = group_sum(count * u)
    xbar = group_sum(u * sum_x) / u_total
    spread = group_sum(u * sum_x2) - u_total * xbar**2
    constant = -0.5 * (
        (count * log(var)).sum(axis=-1) + spread.sum(axis=-1) + log(u_total).sum(axis=-1)
    )
    return constant, xbar, u_total


def gaussian_level(
    x: Any, var: Any, group_sum: Callable[[Any], Any], log: Any
) -> tuple[Any, Any, Any]:
    """``pooled_gaussian_level`` with one unit per x."""
    return pooled_gaussian_level(1.0, x, x**2, var, group_sum, log)


def collapsed_normal_logp(
    cells: RatingCells,
    nesting: Nesting,
    passage_sd: Any,
    textbook_sd: Any,
    publisher_sd: float,
    offset: Any,
    sd: Any,
) -> Any:
    """log p(ratings | rater parameters and standard deviations) with passage, textbook and
    publisher effects all integrated out (up to a constant).

    The reduction of ``passage_level`` repeats upwards (``pooled_gaussian_level``): passages'
    weighted means are Normal around their group's effect with variance 1/W_p + passage_sd^2,
    textbooks' around their publisher's with 1/U_t + textbook_sd^2, and publishers' around 0
    with 1/Q_j + publisher_sd^2. No funnel couples group effects to their scale, whatever the
    design.
    """
    import pytensor.tensor as pt

    total, sum_x, sum_x2, weight = passage_level(cells, offset, sd)
    var = 1.0 / weight + passage_sd**2
    constant, x, u_total = pooled_gaussian_level(
        cells.count, sum_x, sum_x2, var, cells.grouping.sum_tensor, pt.log
    )
    total = total + constant
    if nesting.textbook_publisher is not None:
        var = 1.0 / u_total + textbook_sd**2
        constant, x, u_total = gaussian_level(x, var, nesting.textbook_publisher.sum_tensor, pt.log)
        total = total + constant
    var = 1.0 / u_total + publisher_sd**2
    return total - 0.5 * (pt.log(var) + x**2 / var).sum()


def _normal_draw(
    precision: np.ndarray, weighted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    return weighted / precision + rng.standard_normal(precision.shape) / np.sqrt(precision)


DRAW_CHUNK_VALUES = 2_000_000
"""Draws x units computed at a time where per-draw work runs over every passage or rating: the
float64 temporaries of a chunk stay near 16 MB each however large the study."""


def draw_chunk(units: int, most: int = 256) -> int:
    """Draws per chunk over ``units`` passages or ratings; ``most`` for small studies (the
    random stream, and so a seed's draws, then does not depend on the study's size)."""
    return max(1, min(most, DRAW_CHUNK_VALUES // max(units, 1)))


def collapsed_effect_draws(
    data: ModelData,
    params: dict[str, np.ndarray],
    publisher_sd: float,
    rng: np.random.Generator,
    chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Publisher (and textbook) effects from their exact conditional posteriors, one per
    posterior draw of the parameters ``collapsed_normal_logp`` keeps (draws x effects), a
    ``chunk`` of draws at a time (None: ``draw_chunk(passages)``).

    Publisher j: N(Q_j xbar_j / (Q_j + 1/publisher_sd^2), 1/(Q_j + 1/publisher_sd^2)); then
    textbook t given its publisher's effect mu: N(U_t (xbar_t - mu) / (U_t + 1/textbook_sd^2),
    1/(U_t + 1/textbook_sd^2)).
    """
    values, mask = dense(data)
    nesting = Nesting.of(data)
    textbooks = nesting.textbook_publisher is not None
    n_draws = len(params["passage_sd"])
    chunk = chunk or draw_chunk(len(data.passages))
    publishers = np.empty((n_draws, len(data.publishers)))
    textbook_draws = np.empty((n_draws, len(data.textbooks or [])))
    for start in range(0, n_draws, chunk):
        s = slice(start, start + chunk)
        weight = 1.0 / params["rater_scale"][s] ** 2
        total_weight = weight @ mask.T
        weighted_sum = weight @ (values * mask).T - (weight * params["rater_offset"][s]) @ mask.T
        x, var = (
            weighted_sum / total_weight,
            1.0 / total_weight + params["passage_sd"][s, None] ** 2,
        )
        _, x, u_total = gaussian_level(x, var, nesting.passage_group.sum_array, np.log)
        if nesting.textbook_publisher is not None:
            x_t, u_t = x, u_total
            var = 1.0 / u_t + params["textbook_sd"][s, None] ** 2
            _, x, u_total = gaussian_level(x_t, var, nesting.textbook_publisher.sum_array, np.log)
        mu = _normal_draw(u_total + 1.0 / publisher_sd**2, u_total * x, rng)
        publishers[s] = mu
        if nesting.textbook_publisher is not None:
            prior = 1.0 / params["textbook_sd"][s, None] ** 2
            parent = mu[:, nesting.textbook_publisher.index]
            textbook_draws[s] = _normal_draw(u_t + prior, u_t * (x_t - parent), rng)
    out = {"publisher_effect": publishers}
    if textbooks:
        out["textbook_effect"] = textbook_draws
    return out
