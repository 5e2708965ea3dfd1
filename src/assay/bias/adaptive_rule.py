"""Where the logit kernel integrates each passage's effect: a quadrature rule that puts nodes
at sharp raters' thresholds, and its derivatives.

Passages are integrated on y = (group mean + passage effect) / passage_sd, where a rater's
answer probabilities do not depend on the group and the group enters only through the
passage prior N(mean / passage_sd, 1). A rater whose logistic scale w (in passage sds) is
small answers like a step function of y, at thresholds tau = (cutpoint - offset) /
passage_sd: Gauss-Hermite needs its integrand smooth on the scale of its node spacing and
misses such integrals (by about 30 nats on BABE's opinion labels). This rule is the
trapezoid rule in a warped variable u(y),

    u(y) = y / BACKGROUND + sum over thresholds of (fade(w) / CLUSTER)
           * (asinh((y - tau) / w) - asinh((y - tau) / sqrt(w^2 + HANDOVER^2))),

whose node density is 1 / BACKGROUND away from thresholds and about 1 / (CLUSTER * (|y - tau|
+ w)) near one, so nodes resolve a threshold's logistic tails down to its scale. ``fade``
switches smooth raters' terms off (smoothly, and exactly zero from ``SHARP``). ``NODES``
nodes (more when the group means lie far apart: ``node_count``) span every group's mean +-
``REACH``; the rule depends smoothly on the parameters, and ``warp_pullback`` carries the
gradient through the moving nodes and weights.
"""

from __future__ import annotations

import math

import numba
import numpy as np

NODES = 96
"""Nodes of the rule, shared by every group, while the group means span at most
``EXTRA_NODES_BEYOND`` passage sds; beyond, one more per ``BACKGROUND`` of their span."""
EXTRA_NODES_BEYOND = 4.0
MAX_NODES = 8192
"""At most this many (group means 3,600 passage sds apart), so that a chain wandering to
passage_sd near 0 costs at most about 100 times a usual evaluation."""
REACH = 9.0
"""Nodes cover each group's mean +- this many passage sds (the prior density there is
2.6e-18 of its peak; Gauss-Hermite's 64 nodes reach 8.2 once negligible weights are dropped)."""
BACKGROUND = 0.45
"""Node spacing, in passage sds, away from sharp thresholds (before scaling to ``NODES``)."""
CLUSTER = 0.4
"""Near a sharp threshold, node spacing is this fraction of the distance to it (plus w)."""
HANDOVER = 1.5
"""Distance from a threshold (passage sds) beyond which its extra nodes thin out."""
SHARP = 0.4
"""Raters with a logistic scale below this many passage sds get nodes at their thresholds."""


@numba.njit(cache=False, nogil=True)
def node_count(low: float, high: float) -> int:
    """How many nodes span [low, high]: ``NODES``, and more where the group means lie so far
    apart (passage_sd small against their differences) that the nodes would thin out. The
    count steps at whole nodes; the rules on either side of a step agree to their accuracy."""
    extra = (high - low) - 2.0 * REACH - EXTRA_NODES_BEYOND
    return min(NODES + max(0, math.ceil(extra / BACKGROUND)), MAX_NODES)


@numba.njit(cache=False, nogil=True)
def fade(width: float) -> tuple[float, float]:
    """How strongly a threshold of this width draws nodes, (1 - (w / SHARP)^2)^3 below
    ``SHARP`` and 0 above (twice differentiable), and its derivative."""
    if width >= SHARP:
        return 0.0, 0.0
    x = width / SHARP
    rest = 1.0 - x * x
    return rest * rest * rest, -6.0 * x * rest * rest / SHARP


@numba.njit(cache=False, nogil=True)
def sharp_thresholds(
    offset: np.ndarray, scale: np.ndarray, passage_sd: float, cuts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (rater, cutpoint) threshold with a non-zero ``fade``: its position tau and width
    w on the y scale, fade and fade', rater and cutpoint index (binary: one cutpoint at 0)."""
    n_raters, n_cuts = scale.shape[0], max(cuts.shape[0], 1)
    tau, width = np.empty(n_raters * n_cuts), np.empty(n_raters * n_cuts)
    lam, d_lam = np.empty(n_raters * n_cuts), np.empty(n_raters * n_cuts)
    rater, cut = np.empty(n_raters * n_cuts, np.int64), np.empty(n_raters * n_cuts, np.int64)
    n = 0
    for r in range(n_raters):
        w = scale[r] / passage_sd
        strength, d_strength = fade(w)
        if strength == 0.0:
            continue
        for c in range(n_cuts):
            level = cuts[c] if cuts.shape[0] > 0 else 0.0
            tau[n], width[n] = (level - offset[r]) / passage_sd, w
            lam[n], d_lam[n], rater[n], cut[n] = strength, d_strength, r, c
            n += 1
    return tau[:n], width[:n], lam[:n], d_lam[:n], rater[:n], cut[:n]


@numba.njit(cache=False, nogil=True)
def _terms(d: float, w: float) -> tuple[float, float, float, float]:
    """asinh(d / w) - asinh(d / W), 1 / A1 - 1 / A2, and A1, A2 with W = sqrt(w^2 +
    HANDOVER^2), A1 = sqrt(d^2 + w^2), A2 = sqrt(d^2 + W^2)."""
    wide = math.sqrt(w * w + HANDOVER * HANDOVER)
    a1, a2 = math.sqrt(d * d + w * w), math.sqrt(d * d + wide * wide)
    return math.asinh(d / w) - math.asinh(d / wide), 1.0 / a1 - 1.0 / a2, a1, a2


@numba.njit(cache=False, nogil=True)
def warp(
    y: float, tau: np.ndarray, width: np.ndarray, lam: np.ndarray
) -> tuple[float, float, float]:
    """u(y), u'(y) and u''(y)."""
    u, du, ddu = y / BACKGROUND, 1.0 / BACKGROUND, 0.0
    for b in range(tau.shape[0]):
        d = y - tau[b]
        level, slope, a1, a2 = _terms(d, width[b])
        k = lam[b] / CLUSTER
        u += k * level
        du += k * slope
        ddu += k * d * (1.0 / (a2 * a2 * a2) - 1.0 / (a1 * a1 * a1))
    return u, du, ddu


@numba.njit(cache=False, nogil=True)
def _solve(
    target: float, low: float, high: float, tau: np.ndarray, width: np.ndarray, lam: np.ndarray
) -> float:
    """The y in [low, high] with u(y) = target (u increasing): Newton's method, bisecting
    whenever a step leaves the bracket."""
    u, du, _ = warp(low, tau, width, lam)
    y = min(low + (target - u) / du, high)
    for _ in range(100):
        u, du, _ = warp(y, tau, width, lam)
        gap = u - target
        if abs(gap) <= 1e-13 * (1.0 + abs(target)):
            return y
        if gap < 0.0:
            low = y
        else:
            high = y
        step = y - gap / du
        if step <= low or step >= high:
            step = 0.5 * (low + high)
        if abs(step - y) <= 1e-15 * (1.0 + abs(y)):
            return step
        y = step
    return y


@numba.njit(cache=False, nogil=True)
def place_nodes(
    tau: np.ndarray, width: np.ndarray, lam: np.ndarray, low: float, high: float, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """``n`` nodes y_j with u(y_j) evenly spaced from u(low) to u(high), u' and u'' there,
    and u(low), u(high)."""
    u_low, u_high = warp(low, tau, width, lam)[0], warp(high, tau, width, lam)[0]
    y, du, ddu = np.empty(n), np.empty(n), np.empty(n)
    y[0], y[n - 1] = low, high
    for j in range(1, n - 1):
        target = u_low + (u_high - u_low) * j / (n - 1)
        y[j] = _solve(target, y[j - 1], high, tau, width, lam)
    for j in range(n):
        _, du[j], ddu[j] = warp(y[j], tau, width, lam)
    return y, du, ddu, u_low, u_high


@numba.njit(cache=False, nogil=True)
def _partials(
    y: float, tau: float, w: float, lam: float, d_lam: float
) -> tuple[float, float, float, float]:
    """d u(y) / d tau, d u(y) / d w, d u'(y) / d tau and d u'(y) / d w of one threshold's
    term, at fixed y."""
    d = y - tau
    level, slope, a1, a2 = _terms(d, w)
    wide2 = w * w + HANDOVER * HANDOVER
    k, dk = lam / CLUSTER, d_lam / CLUSTER
    curvature = d * (1.0 / (a2 * a2 * a2) - 1.0 / (a1 * a1 * a1))
    du_dtau = -k * slope
    du_dw = dk * level + k * (-d / (w * a1) + d * w / (wide2 * a2))
    ddu_dtau = -k * curvature
    ddu_dw = dk * slope + k * w * (1.0 / (a2 * a2 * a2) - 1.0 / (a1 * a1 * a1))
    return du_dtau, du_dw, ddu_dtau, ddu_dw


@numba.njit(cache=False, nogil=True)
def warp_pullback(
    y: np.ndarray,
    du: np.ndarray,
    u_low: float,
    u_high: float,
    tau: np.ndarray,
    width: np.ndarray,
    lam: np.ndarray,
    d_lam: np.ndarray,
    g_node: np.ndarray,
    g_slope: np.ndarray,
    g_log_spacing: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The gradient with respect to every threshold's tau and w and to the ends low and high,
    from the gradients with respect to the nodes y_j (``g_node``), to u'(y_j) at fixed y
    (``g_slope``) and to the log node spacing log((u(high) - u(low)) / (n - 1)).

    The nodes solve u(y_j) = (1 - a_j) u(low) + a_j u(high), a_j = j / (n - 1), so
    dy_j = ((1 - a_j) du(low) + a_j du(high) - du(y_j)|_y) / u'(y_j) (implicit function)."""
    n = y.shape[0]
    span = u_high - u_low
    at_low, at_high = g_log_spacing * -1.0 / span, g_log_spacing / span
    g_tau, g_w = np.zeros(tau.shape[0]), np.zeros(tau.shape[0])
    for j in range(n):
        share = g_node[j] / du[j]
        a = j / (n - 1)
        at_low += share * (1.0 - a)
        at_high += share * a
        for b in range(tau.shape[0]):
            du_dtau, du_dw, ddu_dtau, ddu_dw = _partials(y[j], tau[b], width[b], lam[b], d_lam[b])
            g_tau[b] += g_slope[j] * ddu_dtau - share * du_dtau
            g_w[b] += g_slope[j] * ddu_dw - share * du_dw
    for b in range(tau.shape[0]):
        for end, weight in ((y[0], at_low), (y[n - 1], at_high)):
            du_dtau, du_dw, _, _ = _partials(end, tau[b], width[b], lam[b], d_lam[b])
            g_tau[b] += weight * du_dtau
            g_w[b] += weight * du_dw
    return g_tau, g_w, at_low * du[0], at_high * du[n - 1]
