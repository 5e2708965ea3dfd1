"""The logit models' marginal log density and its gradient, written by hand in one numba kernel.

The model PyMC builds (``assay.bias.model_logit`` with the pooled quadrature of
``assay.bias.likelihood``), priors and transforms included, evaluated in one pass over the
rating patterns instead of a PyTensor graph: PyTensor compiles that graph into many numba
functions (about 50 s on BABE from an empty cache, 22 s of it for the priors alone), this
kernel compiles once in about 15 s and costs a fraction of the graph per evaluation.

Passage effects are integrated by ``assay.bias.adaptive_rule``, whose nodes follow sharp
raters' thresholds, where PyMC's graph uses 64 fixed Gauss-Hermite nodes that miss such
integrals (by about 30 nats on BABE's opinion labels). Given a fixed rule instead (``nodes``
non-empty: Gauss-Hermite, or the quadrature check's reference), the kernel computes what PyMC
does; ``tests/unit/bias/test_bias_logit_kernel.py`` holds it to PyMC's log density and
gradient that way, and the adaptive rule to a fine reference rule and finite differences.

The unconstrained vector is laid out as PyMC orders the model's value variables:
[textbook_sd (log)], passage_sd (log), rater_offset (zero-sum, R - 1), rater_log_scale
(zero-sum, R - 1), publisher_effect (P, or P - 1 zero-sum on the ordinal scale),
[textbook_z or textbook_effect (T)], [cutpoints (ordered, C - 1)].
"""

from __future__ import annotations

import math

import numba
import numpy as np

from assay.bias.adaptive_rule import (
    REACH,
    node_count,
    place_nodes,
    sharp_thresholds,
    warp_pullback,
)

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
OUTER_CUT = 1e6
"""The padded outer cutpoints, as in ``assay.bias.likelihood.answer_loglik``."""
EXP_UNDERFLOW = 746.0
"""exp(-x) is 0.0 in double precision beyond this."""
UNDERFLOW = 1e-250
"""A unit's integral below this is recomputed on the log scale, where it cannot underflow."""

# Integer layout of ``layout`` (see ``assay.bias.logit_direct.Layout.array``).
TEXTBOOK_SD, PASSAGE_SD, OFFSET, LOG_SCALE, PUBLISHER, TEXTBOOK, CUT = range(7)
N_RATERS, N_PUBLISHERS, N_TEXTBOOKS, N_LEVELS, FLAGS = range(7, 12)
ORDINAL, PUBLISHER_ZEROSUM, CENTRED = 1, 2, 4

# Prior scales (``assay.bias.priors`` and ``PUBLISHER_PRIOR_SD``); index into ``sigmas``.
SIG_TEXTBOOK_SD, SIG_PASSAGE_SD, SIG_OFFSET, SIG_LOG_SCALE, SIG_PUBLISHER, SIG_CUT = range(6)


@numba.njit(cache=False, nogil=True)
def softplus_pair(x: float) -> tuple[float, float, float]:
    """softplus(x), softplus(-x) and sigmoid(x) from one exponential (none beyond
    ``EXP_UNDERFLOW``, where the exponential is 0 and the results are exact)."""
    if x > EXP_UNDERFLOW:
        return x, 0.0, 1.0
    if x < -EXP_UNDERFLOW:
        return 0.0, -x, 0.0
    e = math.exp(-abs(x))
    tail = math.log1p(e)
    sig = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
    return max(x, 0.0) + tail, max(-x, 0.0) + tail, sig


@numba.njit(cache=False, nogil=True)
def log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x < 0, as PyTensor computes it."""
    if x < -0.6931471805599453:
        return math.log1p(-math.exp(x))
    return math.log(-math.expm1(x))


@numba.njit(cache=False, nogil=True)
def zerosum_extend(z: np.ndarray) -> np.ndarray:
    """PyMC's zero-sum transform, backward: n - 1 free values to n that sum to zero."""
    n = z.shape[0] + 1
    total = z.sum()
    root = math.sqrt(n)
    norm = total / (root + n)
    out = np.empty(n)
    out[: n - 1] = z - norm
    out[n - 1] = -total / root
    return out


@numba.njit(cache=False, nogil=True)
def zerosum_pullback(grad: np.ndarray) -> np.ndarray:
    """The gradient with respect to the free values from one with respect to the n values."""
    n = grad.shape[0]
    root = math.sqrt(n)
    head = grad[: n - 1].sum()
    return grad[: n - 1] - head / (root + n) - grad[n - 1] / root


@numba.njit(cache=False, nogil=True)
def zerosum_normal(x: np.ndarray, start: int, n: int, sigma: float) -> tuple[np.ndarray, float]:
    """The n zero-sum values stored from ``start`` and their ZeroSumNormal log density."""
    values = zerosum_extend(x[start : start + n - 1])
    logp = -0.5 * (values * values).sum() / (sigma * sigma)
    return values, logp - (n - 1) * (HALF_LOG_2PI + math.log(sigma))


@numba.njit(cache=False, nogil=True)
def half_normal_log(x: float, sigma: float) -> tuple[float, float, float]:
    """A HalfNormal on the log scale: its value, log density with the Jacobian, and that
    log density's derivative with respect to the log."""
    value = math.exp(x)
    ratio = value / sigma
    logp = 0.5 * math.log(2.0 / math.pi) - math.log(sigma) - 0.5 * ratio * ratio + x
    return value, logp, 1.0 - ratio * ratio


@numba.njit(cache=False, nogil=True)
def answer_gaps(
    padded: np.ndarray, scale: np.ndarray, ordinal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per rater and answer, log(1 - exp(lower - upper)) with lower and upper the answer's
    cutpoints over the rater's scale (the factor of P(answer) that no passage changes), and
    its derivative with respect to lower - upper; zeros on the binary scale."""
    n_raters, n_answers = scale.shape[0], padded.shape[0] - 1
    gap = np.zeros((n_raters, n_answers))
    d_gap = np.zeros((n_raters, n_answers))
    if not ordinal:
        return gap, d_gap
    for r in range(n_raters):
        for a in range(n_answers):
            lower, upper = padded[a] / scale[r], padded[a + 1] / scale[r]
            gap[r, a] = log1mexp(min(lower - upper, -1e-12))
            if lower - upper < -1e-12:
                d_gap[r, a] = -1.0 / math.expm1(upper - lower)
    return gap, d_gap


@numba.njit(cache=False, nogil=True)
def answer_table(
    group_mean: np.ndarray,
    passage_sd: float,
    offset: np.ndarray,
    scale: np.ndarray,
    padded: np.ndarray,
    gap: np.ndarray,
    nodes: np.ndarray,
    ordinal: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """log p(answer | the passage effect at node k) for every (group, rater, answer) row, with
    a last row of zeros for padding; and sigmoid(eta - padded[c] / scale) per (group, rater),
    cutpoint c and node (binary: sigmoid(eta) in c = 0), for the gradient.

    Binary: log sigmoid(+-eta). Ordinal: P(a) = sigmoid(upper - eta) sigmoid(eta - lower)
    (1 - exp(lower - upper)), the last factor ``gap``."""
    n_groups, n_raters, n_nodes = group_mean.shape[0], scale.shape[0], nodes.shape[0]
    n_answers = padded.shape[0] - 1
    table = np.zeros((n_groups * n_raters * n_answers + 1, n_nodes))
    slope = np.empty((n_groups * n_raters, n_answers + 1, n_nodes))
    pos = np.empty(n_answers + 1)
    neg = np.empty(n_answers + 1)
    for g in range(n_groups):
        for r in range(n_raters):
            inv = 1.0 / scale[r]
            gr = g * n_raters + r
            row = gr * n_answers
            for k in range(n_nodes):
                eta = (group_mean[g] + passage_sd * nodes[k] + offset[r]) * inv
                if not ordinal:
                    pos[0], neg[0], slope[gr, 0, k] = softplus_pair(eta)
                    table[row, k], table[row + 1, k] = -pos[0], -neg[0]
                    continue
                for c in range(n_answers + 1):
                    pos[c], neg[c], slope[gr, c, k] = softplus_pair(eta - padded[c] * inv)
                for a in range(n_answers):
                    table[row + a, k] = -pos[a + 1] - neg[a] + gap[r, a]
    return table, slope


@numba.njit(cache=False, nogil=True)
def log_space_unit(
    table: np.ndarray, cells: np.ndarray, u: int, log_weights: np.ndarray, per_node: np.ndarray
) -> float:
    """log sum_k w_k prod p(answer | node k) of unit ``u`` computed on the log scale, for a
    unit whose terms underflow on the probability scale; ``per_node`` gets each node's share."""
    n_nodes = log_weights.shape[0]
    for k in range(n_nodes):
        per_node[k] = log_weights[k]
    for m in range(cells.shape[1]):
        row = cells[u, m]
        for k in range(n_nodes):
            per_node[k] += table[row, k]
    top = per_node.max()
    summed = 0.0
    for k in range(n_nodes):
        per_node[k] = math.exp(per_node[k] - top)
        summed += per_node[k]
    per_node /= summed
    return top + math.log(summed)


@numba.njit(cache=False, nogil=True)
def pattern_pass(
    table: np.ndarray,
    cells: np.ndarray,
    count: np.ndarray,
    unit_rule: np.ndarray,
    log_weights: np.ndarray,
    grad_table: np.ndarray,
    grad_weights: np.ndarray,
) -> float:
    """sum over units of count x log sum_k w_k prod p(answer | node k), with the weights of
    the unit's rule (row ``unit_rule[u]`` of ``log_weights``), and its gradient with respect
    to every table entry and log weight, added into ``grad_table`` and ``grad_weights``.

    Products are taken on the probability scale (no exponential per unit and node); a unit
    whose sum falls below ``UNDERFLOW`` is summed again on the log scale."""
    n_nodes = log_weights.shape[1]
    prob, weights = np.exp(table), np.exp(log_weights)
    per_node = np.empty(n_nodes)
    total = 0.0
    for u in range(cells.shape[0]):
        rule = unit_rule[u]
        for k in range(n_nodes):
            per_node[k] = weights[rule, k]
        for m in range(cells.shape[1]):
            row = cells[u, m]
            for k in range(n_nodes):
                per_node[k] *= prob[row, k]
        summed = per_node.sum()
        if summed >= UNDERFLOW:
            total += count[u] * math.log(summed)
            share = count[u] / summed
        else:
            total += count[u] * log_space_unit(table, cells, u, log_weights[rule], per_node)
            share = count[u]
        for k in range(n_nodes):
            grad_weights[rule, k] += share * per_node[k]
        for m in range(cells.shape[1]):
            row = cells[u, m]
            for k in range(n_nodes):
                grad_table[row, k] += share * per_node[k]
    return total


@numba.njit(cache=False, nogil=True)
def table_pullback(
    grad_table: np.ndarray,
    slope: np.ndarray,
    d_gap: np.ndarray,
    group_mean: np.ndarray,
    passage_sd: float,
    offset: np.ndarray,
    scale: np.ndarray,
    padded: np.ndarray,
    nodes: np.ndarray,
    ordinal: bool,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From the gradient with respect to the answer table to the gradients with respect to
    the group means, passage_sd, rater offsets and scales, the padded cutpoints and the
    nodes."""
    n_groups, n_raters, n_nodes = group_mean.shape[0], scale.shape[0], nodes.shape[0]
    n_answers = padded.shape[0] - 1
    d_mean, d_offset, d_scale = np.zeros(n_groups), np.zeros(n_raters), np.zeros(n_raters)
    d_lower = np.zeros((n_raters, n_answers))  # d logp / d (padded[a] / scale[r])
    d_upper = np.zeros((n_raters, n_answers))  # d logp / d (padded[a + 1] / scale[r])
    d_sd = 0.0
    d_node = np.zeros(n_nodes)
    for g in range(n_groups):
        for r in range(n_raters):
            inv = 1.0 / scale[r]
            gr = g * n_raters + r
            row = gr * n_answers
            for k in range(n_nodes):
                d_eta = 0.0
                if ordinal:
                    for a in range(n_answers):
                        weight = grad_table[row + a, k]
                        above, below = slope[gr, a + 1, k], 1.0 - slope[gr, a, k]
                        d_eta += weight * (below - above)
                        d_lower[r, a] += weight * (d_gap[r, a] - below)
                        d_upper[r, a] += weight * (above - d_gap[r, a])
                else:
                    p = slope[gr, 0, k]
                    d_eta = grad_table[row + 1, k] * (1.0 - p) - grad_table[row, k] * p
                eta = (group_mean[g] + passage_sd * nodes[k] + offset[r]) * inv
                d_mean[g] += d_eta * inv
                d_sd += d_eta * inv * nodes[k]
                d_offset[r] += d_eta * inv
                d_scale[r] -= d_eta * eta * inv
                d_node[k] += d_eta * inv * passage_sd
    d_cut = np.zeros(n_answers + 1)
    if ordinal:
        for r in range(n_raters):
            inv = 1.0 / scale[r]
            for a in range(n_answers):
                d_cut[a] += d_lower[r, a] * inv
                d_cut[a + 1] += d_upper[r, a] * inv
                lower, upper = padded[a] * inv, padded[a + 1] * inv
                d_scale[r] -= (d_lower[r, a] * lower + d_upper[r, a] * upper) * inv
    return d_mean, d_sd, d_offset, d_scale, d_cut, d_node


@numba.njit(cache=False, nogil=True)
def padded_cutpoints(cuts: np.ndarray, ordinal: bool) -> np.ndarray:
    """The cutpoints between -OUTER_CUT and OUTER_CUT (binary: those two alone)."""
    n_answers = cuts.shape[0] + 1 if ordinal else 2
    padded = np.empty(n_answers + 1)
    padded[0], padded[n_answers] = -OUTER_CUT, OUTER_CUT
    if ordinal:
        padded[1:n_answers] = cuts
    return padded


@numba.njit(cache=False, nogil=True)
def table_loglik(
    group_mean: np.ndarray,
    passage_sd: float,
    offset: np.ndarray,
    scale: np.ndarray,
    padded: np.ndarray,
    ordinal: bool,
    nodes: np.ndarray,
    cells: np.ndarray,
    count: np.ndarray,
    unit_rule: np.ndarray,
    log_weights: np.ndarray,
) -> tuple[
    float, np.ndarray, tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
]:
    """The ratings' log-likelihood at the given nodes and weights (the answer table for
    ``group_mean`` + passage_sd x node, ``pattern_pass``), its gradient with respect to the
    log weights, and ``table_pullback``'s gradients."""
    gap, d_gap = answer_gaps(padded, scale, ordinal)
    table, slope = answer_table(group_mean, passage_sd, offset, scale, padded, gap, nodes, ordinal)
    grad_table, grad_weights = np.zeros(table.shape), np.zeros(log_weights.shape)
    loglik = pattern_pass(table, cells, count, unit_rule, log_weights, grad_table, grad_weights)
    pulled = table_pullback(
        grad_table, slope, d_gap, group_mean, passage_sd, offset, scale, padded, nodes, ordinal
    )
    return loglik, grad_weights, pulled


@numba.njit(cache=False, nogil=True)
def fixed_rule_loglik(
    group_mean: np.ndarray,
    passage_sd: float,
    offset: np.ndarray,
    scale: np.ndarray,
    cuts: np.ndarray,
    ordinal: bool,
    cells: np.ndarray,
    count: np.ndarray,
    nodes: np.ndarray,
    log_weights: np.ndarray,
) -> tuple[float, np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    """The ratings' log-likelihood with passage effects integrated by one fixed rule for
    E[f(Z)], Z ~ N(0, 1) (as PyMC's graph does, with Gauss-Hermite), and its gradient with
    respect to the group means, passage_sd, rater offsets and scales, and the cutpoints."""
    padded = padded_cutpoints(cuts, ordinal)
    one_rule = np.zeros(cells.shape[0], np.int64)
    loglik, _, pulled = table_loglik(
        group_mean, passage_sd, offset, scale, padded, ordinal, nodes, cells, count, one_rule,
        log_weights.reshape(1, -1),
    )  # fmt: skip
    d_mean, d_sd, d_offset, d_scale, d_padded, _ = pulled
    return loglik, d_mean, d_sd, d_offset, d_scale, d_padded[1:-1].copy()


@numba.njit(cache=False, nogil=True)
def group_log_weights(
    y: np.ndarray, slope: np.ndarray, log_spacing: float, mu: np.ndarray
) -> np.ndarray:
    """Per group, the log weight of every node for E[f(Y)], Y ~ N(mu_g, 1), in the warped
    trapezoid rule: spacing / u'(y) x the normal density."""
    log_weights = np.empty((mu.shape[0], y.shape[0]))
    for g in range(mu.shape[0]):
        for j in range(y.shape[0]):
            z = y[j] - mu[g]
            log_weights[g, j] = log_spacing - math.log(slope[j]) - 0.5 * z * z - HALF_LOG_2PI
    return log_weights


@numba.njit(cache=False, nogil=True)
def group_weights_pullback(
    grad_weights: np.ndarray,
    y: np.ndarray,
    slope: np.ndarray,
    curve: np.ndarray,
    mu: np.ndarray,
    g_node: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """From the gradient with respect to ``group_log_weights`` to those with respect to mu,
    u'(y_j) at fixed y and the log spacing; the part through y_j is added into ``g_node``."""
    d_mu, g_slope, g_spacing = np.zeros(mu.shape[0]), np.zeros(y.shape[0]), 0.0
    for g in range(mu.shape[0]):
        for j in range(y.shape[0]):
            weight, z = grad_weights[g, j], y[j] - mu[g]
            d_mu[g] += weight * z
            g_node[j] -= weight * (z + curve[j] / slope[j])
            g_slope[j] -= weight / slope[j]
            g_spacing += weight
    return d_mu, g_slope, g_spacing


@numba.njit(cache=False, nogil=True)
def adaptive_rule_loglik(
    group_mean: np.ndarray,
    passage_sd: float,
    offset: np.ndarray,
    scale: np.ndarray,
    cuts: np.ndarray,
    ordinal: bool,
    shared_cells: np.ndarray,
    count: np.ndarray,
    unit_group: np.ndarray,
) -> tuple[float, np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    """``fixed_rule_loglik`` with ``assay.bias.adaptive_rule``'s nodes on y = (group mean +
    passage effect) / passage_sd: one answer table for all groups (``shared_cells`` index it
    by rater and answer), and the gradient through the moving nodes and weights."""
    padded = padded_cutpoints(cuts, ordinal)
    mu = group_mean / passage_sd
    tau, width, lam, d_lam, rater, cut = sharp_thresholds(offset, scale, passage_sd, cuts)
    lowest, highest = np.argmin(mu), np.argmax(mu)
    low, high = mu[lowest] - REACH, mu[highest] + REACH
    n_nodes = node_count(low, high)
    y, slope_u, curve_u, u_low, u_high = place_nodes(tau, width, lam, low, high, n_nodes)
    log_spacing = math.log((u_high - u_low) / (n_nodes - 1))
    log_weights = group_log_weights(y, slope_u, log_spacing, mu)
    loglik, grad_weights, pulled = table_loglik(
        np.zeros(1), passage_sd, offset, scale, padded, ordinal, y, shared_cells, count,
        unit_group, log_weights,
    )  # fmt: skip
    _, d_sd, d_offset, d_scale, d_padded, g_node = pulled
    d_mu, g_slope, g_spacing = group_weights_pullback(grad_weights, y, slope_u, curve_u, mu, g_node)
    g_tau, g_width, g_low, g_high = warp_pullback(
        y, slope_u, u_low, u_high, tau, width, lam, d_lam, g_node, g_slope, g_spacing
    )
    d_mu[lowest] += g_low
    d_mu[highest] += g_high
    for b in range(tau.shape[0]):
        r = rater[b]
        d_offset[r] -= g_tau[b] / passage_sd
        d_scale[r] += g_width[b] / passage_sd
        d_sd -= (g_tau[b] * tau[b] + g_width[b] * width[b]) / passage_sd
        if ordinal:
            d_padded[cut[b] + 1] += g_tau[b] / passage_sd
    d_sd -= (d_mu * mu).sum() / passage_sd
    return loglik, d_mu / passage_sd, d_sd, d_offset, d_scale, d_padded[1:-1].copy()


@numba.njit(cache=False, nogil=True)
def normal_logp(values: np.ndarray, sigma: float) -> float:
    """Normal(0, sigma) log density of every value, summed."""
    return -0.5 * (values * values).sum() / (sigma * sigma) - values.shape[0] * (
        HALF_LOG_2PI + math.log(sigma)
    )


@numba.njit(cache=False, nogil=True)
def ordered_cutpoints(
    x: np.ndarray, start: int, mu: np.ndarray, sigma: float
) -> tuple[np.ndarray, float]:
    """The cutpoints stored from ``start`` through PyMC's ordered transform and their
    Normal(mu, sigma) log density with the transform's Jacobian."""
    cuts = np.empty(mu.shape[0])
    logp = 0.0
    for c in range(mu.shape[0]):
        cuts[c] = x[start] if c == 0 else cuts[c - 1] + math.exp(x[start + c])
        if c > 0:
            logp += x[start + c]
        z = (cuts[c] - mu[c]) / sigma
        logp += -0.5 * z * z - HALF_LOG_2PI - math.log(sigma)
    return cuts, logp


@numba.njit(cache=False, nogil=True)
def ordered_pullback(
    x: np.ndarray, start: int, cuts: np.ndarray, mu: np.ndarray, sigma: float, d_cuts: np.ndarray
) -> np.ndarray:
    """The gradient with respect to the stored cutpoint values (prior and Jacobian added)."""
    n = cuts.shape[0]
    grad = np.empty(n)
    later = 0.0
    for c in range(n - 1, -1, -1):
        later += d_cuts[c] - (cuts[c] - mu[c]) / (sigma * sigma)
        grad[c] = later if c == 0 else later * math.exp(x[start + c]) + 1.0
    return grad


@numba.njit(cache=False, nogil=True)
def textbook_effects(
    x: np.ndarray, layout: np.ndarray, sigma: float
) -> tuple[float, float, np.ndarray, np.ndarray, float]:
    """textbook_sd, its log density's derivative with respect to its log, the stored
    textbook values, the textbook effects and the log density of all of them."""
    n, centred = layout[N_TEXTBOOKS], (layout[FLAGS] & CENTRED) != 0
    textbook_sd, logp, d_log_sd = half_normal_log(x[layout[TEXTBOOK_SD]], sigma)
    free = x[layout[TEXTBOOK] : layout[TEXTBOOK] + n]
    if centred:
        return textbook_sd, d_log_sd, free, free.copy(), logp + normal_logp(free, textbook_sd)
    return textbook_sd, d_log_sd, free, textbook_sd * free, logp + normal_logp(free, 1.0)


@numba.njit(cache=False, nogil=True)
def textbook_pullback(
    layout: np.ndarray, textbook_sd: float, d_log_sd: float, free: np.ndarray, d_mean: np.ndarray
) -> tuple[float, np.ndarray]:
    """The gradients with respect to log textbook_sd and the stored textbook values, from
    the gradient with respect to the textbooks' means."""
    if (layout[FLAGS] & CENTRED) != 0:
        var = textbook_sd * textbook_sd
        d_sd = ((free * free).sum() / var - free.shape[0]) / textbook_sd
        return d_sd * textbook_sd + d_log_sd, d_mean - free / var
    return (d_mean * free).sum() * textbook_sd + d_log_sd, d_mean * textbook_sd - free


@numba.njit(cache=False, nogil=True)
def logp_and_grad(
    x: np.ndarray,
    layout: np.ndarray,
    sigmas: np.ndarray,
    cut_mu: np.ndarray,
    textbook_publisher: np.ndarray,
    cells: np.ndarray,
    count: np.ndarray,
    unit_group: np.ndarray,
    shared_cells: np.ndarray,
    nodes: np.ndarray,
    log_weights: np.ndarray,
) -> tuple[float, np.ndarray]:
    """The model's log density (Jacobians included) at ``x`` and its gradient: passages
    integrated by ``assay.bias.adaptive_rule`` when ``nodes`` is empty, else by that fixed
    rule for E[f(Z)], Z ~ N(0, 1) (PyMC's Gauss-Hermite, or a reference)."""
    n_raters, n_pub, n_textbooks = layout[N_RATERS], layout[N_PUBLISHERS], layout[N_TEXTBOOKS]
    ordinal = (layout[FLAGS] & ORDINAL) != 0
    zerosum_publishers = (layout[FLAGS] & PUBLISHER_ZEROSUM) != 0
    grad = np.zeros(x.shape[0])

    passage_sd, logp, d_log_sd = half_normal_log(x[layout[PASSAGE_SD]], sigmas[SIG_PASSAGE_SD])
    offset, lp = zerosum_normal(x, layout[OFFSET], n_raters, sigmas[SIG_OFFSET])
    logp += lp
    log_scale, lp = zerosum_normal(x, layout[LOG_SCALE], n_raters, sigmas[SIG_LOG_SCALE])
    logp += lp
    scale = np.exp(log_scale)
    sig_pub = sigmas[SIG_PUBLISHER]
    if zerosum_publishers:
        publisher, lp = zerosum_normal(x, layout[PUBLISHER], n_pub, sig_pub)
    else:
        publisher = x[layout[PUBLISHER] : layout[PUBLISHER] + n_pub].copy()
        lp = normal_logp(publisher, sig_pub)
    logp += lp
    group_mean = publisher.copy()
    textbook_sd, d_log_tsd, free = 0.0, 0.0, np.empty(0)
    if n_textbooks > 0:
        textbook_sd, d_log_tsd, free, textbook, lp = textbook_effects(
            x, layout, sigmas[SIG_TEXTBOOK_SD]
        )
        logp += lp
        group_mean = publisher[textbook_publisher] + textbook
    cuts = np.empty(0)
    if ordinal:
        cuts, lp = ordered_cutpoints(x, layout[CUT], cut_mu, sigmas[SIG_CUT])
        logp += lp

    if nodes.shape[0] == 0:
        loglik, d_mean, d_sd, d_offset, d_scale, d_cuts = adaptive_rule_loglik(
            group_mean, passage_sd, offset, scale, cuts, ordinal, shared_cells, count, unit_group
        )  # fmt: skip
    else:
        loglik, d_mean, d_sd, d_offset, d_scale, d_cuts = fixed_rule_loglik(
            group_mean, passage_sd, offset, scale, cuts, ordinal, cells, count, nodes, log_weights
        )
    logp += loglik

    grad[layout[PASSAGE_SD]] = d_sd * passage_sd + d_log_sd
    d_offset -= offset / (sigmas[SIG_OFFSET] * sigmas[SIG_OFFSET])
    grad[layout[OFFSET] : layout[OFFSET] + n_raters - 1] = zerosum_pullback(d_offset)
    d_log_scale = d_scale * scale - log_scale / (sigmas[SIG_LOG_SCALE] * sigmas[SIG_LOG_SCALE])
    grad[layout[LOG_SCALE] : layout[LOG_SCALE] + n_raters - 1] = zerosum_pullback(d_log_scale)
    d_publisher = d_mean
    if n_textbooks > 0:
        d_publisher = np.zeros(n_pub)
        for t in range(n_textbooks):
            d_publisher[textbook_publisher[t]] += d_mean[t]
        d_log_tsd, d_free = textbook_pullback(layout, textbook_sd, d_log_tsd, free, d_mean)
        grad[layout[TEXTBOOK_SD]] = d_log_tsd
        grad[layout[TEXTBOOK] : layout[TEXTBOOK] + n_textbooks] = d_free
    d_publisher = d_publisher - publisher / (sig_pub * sig_pub)
    start = layout[PUBLISHER]
    if zerosum_publishers:
        grad[start : start + n_pub - 1] = zerosum_pullback(d_publisher)
    else:
        grad[start : start + n_pub] = d_publisher
    if ordinal:
        start = layout[CUT]
        grad[start : start + cuts.shape[0]] = ordered_pullback(
            x, start, cuts, cut_mu, sigmas[SIG_CUT], d_cuts
        )
    return logp, grad
