"""The binary and ordinal models as nutpie samples them: ``assay.bias.logit_kernel``'s
hand-written log density in place of PyMC's compiled graph, with the same parameters, priors,
draws' names and dimensions.

``compile_direct(data)`` is what ``assay.bias.sampling`` compiles for a marginalised logit
model; the PyMC model (``assay.bias.model_logit``) stays the reference the kernel is tested
against and what prior predictive draws come from.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.bias.collapsed import Nesting
from assay.bias.design import ModelData
from assay.bias.likelihood import (
    PUBLISHER_PRIOR_SD,
    RatingPatterns,
    quadrature,
)
from assay.bias.priors import LOGIT_PRIOR_SD, centred_textbooks, cutpoint_means


def _kernel() -> Any:
    """``assay.bias.logit_kernel``, imported on first use: it is numba code, and numba (the
    bayes extra) loads only when a fit needs it."""
    from assay.bias import logit_kernel

    return logit_kernel


def shared_cells(patterns: RatingPatterns) -> np.ndarray:
    """``patterns.cells`` indexing a table of rater x answer rows (one for every group), with
    its padding row last."""
    per_group = patterns.n_raters * patterns.n_values
    cells = np.where(patterns.cells == patterns.pad, per_group, patterns.cells % per_group)
    return np.ascontiguousarray(cells, np.int64)


def _free_size(transform: str, size: int) -> int:
    """Unconstrained values a parameter of ``size`` values takes: one fewer when zero-sum."""
    return size - 1 if transform == "zerosum" else size


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in the unconstrained vector, in PyMC's order, and the
    design's sizes."""

    blocks: tuple[tuple[str, str, int], ...]  # (name, transform, constrained size)
    n_raters: int
    n_publishers: int
    n_textbooks: int
    n_levels: int
    centred: bool

    @classmethod
    def of(cls, data: ModelData) -> Layout:
        if data.scale not in ("binary", "ordinal"):
            raise ValueError(f"the logit kernel covers binary and ordinal, not {data.scale}")
        raters, publishers = len(data.raters), len(data.publishers)
        textbooks = 0 if data.textbooks is None else len(data.textbooks)
        ordinal = data.scale == "ordinal"
        centred = textbooks > 0 and centred_textbooks(data)
        blocks: list[tuple[str, str, int]] = []
        if textbooks:
            blocks.append(("textbook_sd", "log", 1))
        blocks += [
            ("passage_sd", "log", 1),
            ("rater_offset", "zerosum", raters),
            ("rater_log_scale", "zerosum", raters),
            ("publisher_effect", "zerosum" if ordinal else "none", publishers),
        ]
        if textbooks:
            blocks.append(("textbook_effect" if centred else "textbook_z", "none", textbooks))
        if ordinal:
            assert data.levels is not None
            blocks.append(("cutpoints", "ordered", len(data.levels) - 1))
        levels = 0 if data.levels is None else len(data.levels)
        return cls(tuple(blocks), raters, publishers, textbooks, levels, centred)

    @property
    def starts(self) -> dict[str, int]:
        starts, at = {}, 0
        for name, transform, size in self.blocks:
            starts[name] = at
            at += _free_size(transform, size)
        return starts

    @property
    def n_dim(self) -> int:
        return sum(_free_size(transform, size) for _, transform, size in self.blocks)

    def array(self) -> np.ndarray:
        """The integer layout ``assay.bias.logit_kernel`` reads."""
        k = _kernel()
        starts = self.starts
        out = np.zeros(12, dtype=np.int64)
        out[k.TEXTBOOK_SD] = starts.get("textbook_sd", -1)
        out[k.PASSAGE_SD] = starts["passage_sd"]
        out[k.OFFSET] = starts["rater_offset"]
        out[k.LOG_SCALE] = starts["rater_log_scale"]
        out[k.PUBLISHER] = starts["publisher_effect"]
        out[k.TEXTBOOK] = starts.get("textbook_z", starts.get("textbook_effect", -1))
        out[k.CUT] = starts.get("cutpoints", -1)
        out[k.N_RATERS], out[k.N_PUBLISHERS] = self.n_raters, self.n_publishers
        out[k.N_TEXTBOOKS], out[k.N_LEVELS] = self.n_textbooks, self.n_levels
        ordinal = any(name == "cutpoints" for name, _, _ in self.blocks)
        out[k.FLAGS] = (
            (k.ORDINAL if ordinal else 0)
            | (k.PUBLISHER_ZEROSUM if ordinal else 0)
            | (k.CENTRED if self.centred else 0)
        )
        return out

    def initial_point(self) -> np.ndarray:
        """PyMC's initial point on the unconstrained scale, without jitter: zeros, and the
        cutpoints' initial values through the ordered transform."""
        point = np.zeros(self.n_dim)
        if self.n_levels:
            cuts = cutpoint_means(self.n_levels)
            start = self.starts["cutpoints"]
            point[start] = cuts[0]
            point[start + 1 : start + len(cuts)] = np.log(np.diff(cuts))
        return point


def _zerosum_free(values: np.ndarray) -> np.ndarray:
    """The inverse of ``_zerosum``: the n - 1 free values of n that sum to zero."""
    n = values.shape[0]
    return values[:-1] - values[-1] * math.sqrt(n) / (math.sqrt(n) + n)


def _zerosum(free: np.ndarray) -> np.ndarray:
    n = free.shape[0] + 1
    total = free.sum()
    return np.append(free - total / (math.sqrt(n) + n), -total / math.sqrt(n))


@dataclass(frozen=True)
class DirectLogitDensity:
    """The kernel's arguments for one study, and the map from the unconstrained vector to the
    named draws."""

    layout: Layout
    arrays: tuple[np.ndarray, ...]
    coords: dict[str, list[str]]
    dims: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, data: ModelData) -> DirectLogitDensity:
        layout = Layout.of(data)
        patterns = RatingPatterns.of(data, pooled=True)
        nesting = Nesting.of(data).textbook_publisher
        textbook_publisher = np.zeros(0, np.int64) if nesting is None else nesting.index
        prior = LOGIT_PRIOR_SD
        sigmas = np.array(
            [prior["textbook_sd"], prior["passage_sd"], prior["rater_offset"],
             prior["rater_log_scale"], PUBLISHER_PRIOR_SD[data.scale], prior["cutpoints"]]
        )  # fmt: skip
        cut_mu = cutpoint_means(layout.n_levels) if layout.n_levels else np.zeros(0)
        arrays = (
            layout.array(), sigmas, cut_mu, np.ascontiguousarray(textbook_publisher, np.int64),
            np.ascontiguousarray(patterns.cells, np.int64), patterns.count.astype(np.float64),
            np.ascontiguousarray(patterns.group.index, np.int64), shared_cells(patterns),
            np.zeros(0), np.zeros(0),
        )  # fmt: skip
        keep = ("publisher", "rater", "textbook", "cutpoint")
        coords = {name: list(values) for name, values in data.coords.items() if name in keep}
        dims = {
            "passage_sd": (), "textbook_sd": (), "rater_offset": ("rater",),
            "rater_log_scale": ("rater",), "rater_scale": ("rater",),
            "publisher_effect": ("publisher",), "textbook_z": ("textbook",),
            "textbook_effect": ("textbook",), "cutpoints": ("cutpoint",),
        }  # fmt: skip
        return cls(layout, arrays, coords, dims)

    def logp_and_grad(
        self, x: np.ndarray, rule: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[float, np.ndarray]:
        """The log density and its gradient at ``x``: passages integrated by the adaptive
        rule, or by ``rule`` (nodes and log weights for E[f(Z)], Z ~ N(0, 1)), such as
        ``assay.bias.likelihood.quadrature()``, the Gauss-Hermite rule PyMC's graph uses."""
        arrays = self.arrays if rule is None else (*self.arrays[:-2], *rule)
        return _kernel().logp_and_grad(np.asarray(x, dtype=np.float64), *arrays)

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The named draws on their own scales, as PyMC names them (transformed values left
        out), with ``rater_scale`` and, without centring, ``textbook_effect``."""
        out: dict[str, np.ndarray] = {}
        starts = self.layout.starts
        for name, transform, size in self.layout.blocks:
            start = starts[name]
            free = np.asarray(x[start : start + _free_size(transform, size)], dtype=float)
            if transform == "log":
                out[name] = np.asarray(math.exp(free[0]))
            elif transform == "zerosum":
                out[name] = _zerosum(free)
            elif transform == "ordered":
                out[name] = np.cumsum(np.append(free[0], np.exp(free[1:])))
            else:
                out[name] = free.copy()
        out["rater_scale"] = np.exp(out["rater_log_scale"])
        if "textbook_z" in out:
            out["textbook_effect"] = out["textbook_sd"] * out["textbook_z"]
        return out

    def unconstrained(self, draw: dict[str, np.ndarray]) -> np.ndarray:
        """The inverse of ``expand``: the unconstrained vector of one named draw."""
        parts = []
        for name, transform, _ in self.layout.blocks:
            value = np.atleast_1d(np.asarray(draw[name], dtype=float))
            if transform == "log":
                parts.append(np.log(value))
            elif transform == "zerosum":
                parts.append(_zerosum_free(value))
            elif transform == "ordered":
                parts.append(np.append(value[0], np.log(np.diff(value))))
            else:
                parts.append(value)
        return np.concatenate(parts)

    def mean_span(self, draw: dict[str, np.ndarray]) -> float:
        """How far apart (in passage sds) the groups' means lie in ``draw``."""
        means = np.asarray(draw["publisher_effect"], dtype=float)
        if self.layout.n_textbooks:
            effects = draw.get("textbook_effect")
            if effects is None:
                effects = draw["textbook_sd"] * draw["textbook_z"]
            means = means[self.arrays[3]] + effects
        return float((means.max() - means.min()) / draw["passage_sd"])

    def names(self) -> list[str]:
        names = [name for name, _, _ in self.layout.blocks] + ["rater_scale"]
        return names + (["textbook_effect"] if "textbook_z" in names else [])

    def shapes(self) -> list[tuple[int, ...]]:
        layout = self.layout
        sizes = {
            "publisher": layout.n_publishers,
            "rater": layout.n_raters,
            "textbook": layout.n_textbooks,
            "cutpoint": max(layout.n_levels - 1, 0),
        }
        return [tuple(sizes[d] for d in self.dims[name]) for name in self.names()]


def initial_point_fn(model: Any) -> Any:
    """The chains' starting points exactly as ``nutpie.compile_pymc_model`` draws them from
    ``model`` (PyMC's initial point, uniform(-1, 1) jitter on every free variable, seeded by
    nutpie per chain), flattened in the value variables' order. PyMC compiles it in Python
    mode (no C or numba compilation), which is not thread-safe: nutpie starts its chains from
    several threads, so draws take a lock, as nutpie's own wrapper does."""
    from pymc.initial_point import make_initial_point_fn

    draw = make_initial_point_fn(
        model=model,
        jitter_rvs=set(model.free_RVs),
        default_strategy="support_point",
        return_transformed=True,
    )
    names = [var.name for var in model.value_vars]
    lock = threading.Lock()

    def initial_point(seed: int) -> np.ndarray:
        with lock:
            point = draw(seed)
        return np.concatenate([np.ravel(point[name]) for name in names]).astype(np.float64)

    return initial_point


def compile_direct(data: ModelData, model: Any) -> Any:
    """A nutpie model of the marginalised logit ``model`` built on ``data``, ready for
    ``nutpie.sample``, starting its chains where ``nutpie.compile_pymc_model`` would
    (``initial_point_fn``). Compiling is the kernel's numba compilation, forced here."""
    from nutpie.compiled_pyfunc import from_pyfunc

    density = DirectLogitDensity.of(data)
    starts = initial_point_fn(model)
    if starts(0).shape != (density.layout.n_dim,):
        raise ValueError(
            f"the model has {starts(0).size} free values, the logit kernel for its data "
            f"{density.layout.n_dim}: build the model on the same data"
        )
    density.logp_and_grad(density.layout.initial_point())

    def make_logp_fn() -> Any:
        kernel_args, logp_and_grad = density.arrays, _kernel().logp_and_grad

        def logp(x: np.ndarray, **_: Any) -> tuple[float, np.ndarray]:
            return logp_and_grad(x, *kernel_args)

        return logp

    def make_expand_fn(*_: Any) -> Any:
        def expand(x: np.ndarray, **__: Any) -> dict[str, np.ndarray]:
            return density.expand(x)

        return expand

    names = density.names()
    return from_pyfunc(
        ndim=density.layout.n_dim,
        make_logp_fn=make_logp_fn,
        make_expand_fn=make_expand_fn,
        expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=density.shapes(),
        expanded_names=names,
        coords=density.coords,
        dims={name: density.dims[name] for name in names},
        make_initial_point_fn=starts,
    )


REFERENCE_STEP = 0.25
"""The reference rule's node spacing, as a fraction of the sharpest rater's logistic scale
over passage_sd (and at most ``REFERENCE_MAX_STEP``)."""
REFERENCE_MAX_STEP = 0.05
REFERENCE_REACH = 10.0
"""The reference rule covers each group's passage prior to +- this many sds beyond the span
of the group means (the adaptive rule's nodes span the group means +- 9)."""
REFERENCE_MAX_NODES = 100_001
QUADRATURE_TOLERANCE = 0.1
"""Largest spread (nats) of the quadrature's log-density error over the checked posterior
draws: a constant error leaves the posterior alone, a varying one reshapes it."""


def reference_rule(draw: dict[str, np.ndarray], mean_span: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log weights of a fine trapezoid rule for E[f(Z)], Z ~ N(0, 1), for
    ``draw``'s sharpest rater and group means spanning ``mean_span`` passage sds: exact to
    double precision once its spacing is a quarter of the integrand's smallest scale (its
    error falls as exp(-2 pi^2 scale / spacing)), and independent of the adaptive rule."""
    sharpest = float(np.min(draw["rater_scale"]) / draw["passage_sd"])
    reach = REFERENCE_REACH + mean_span
    step = max(min(REFERENCE_STEP * sharpest, REFERENCE_MAX_STEP),
               2 * reach / (REFERENCE_MAX_NODES - 1))  # fmt: skip
    nodes = np.arange(-reach, reach + step / 2, step)
    return nodes, math.log(step) - 0.5 * nodes**2 - 0.5 * math.log(2 * math.pi)


def quadrature_error(
    density: DirectLogitDensity, draws: list[dict[str, np.ndarray]], rule: Any = None
) -> float:
    """How much the quadrature's error varies over ``draws``: the spread (max - min) of the
    log density with the sampled rule (the adaptive one, or ``rule``, e.g. PyMC's
    ``assay.bias.likelihood.quadrature()``) minus the log density with ``reference_rule``.

    Gauss-Hermite needs the integrand smooth on the scale of its node spacing; a rater whose
    scale is a small fraction of passage_sd answers like a step function of the passage
    effect, and then 64 Gauss-Hermite nodes miss the log density by an amount that changes
    with the parameters (on BABE's opinion labels, about 30 nats, varying by 5)."""
    errors = []
    for draw in draws:
        x = density.unconstrained(draw)
        sampled = density.logp_and_grad(x, rule)[0]
        reference = reference_rule(draw, density.mean_span(draw))
        errors.append(sampled - density.logp_and_grad(x, reference)[0])
    return float(max(errors) - min(errors))


def posterior_draws(idata: Any, names: list[str], count: int) -> list[dict[str, np.ndarray]]:
    """``count`` draws spread evenly over every chain of the posterior, by name."""
    stacked = {name: idata.posterior[name].stack(sample=("chain", "draw")) for name in names}
    total = next(iter(stacked.values())).sizes["sample"]
    picks = np.linspace(0, total - 1, min(count, total)).astype(int)
    return [
        {name: values.isel(sample=i).to_numpy() for name, values in stacked.items()} for i in picks
    ]


def check_quadrature(
    idata: Any,
    data: ModelData,
    diagnostics: Any,
    *,
    gauss_hermite_rule: bool = False,
    draws: int = 8,
) -> None:
    """Add the quadrature's accuracy to ``diagnostics`` (binary and ordinal scales with
    passages integrated out), and a failure when it exceeds ``QUADRATURE_TOLERANCE``."""
    density = DirectLogitDensity.of(data)
    names = [name for name, _, _ in density.layout.blocks] + ["rater_scale"]
    rule = quadrature() if gauss_hermite_rule else None
    spread = quadrature_error(density, posterior_draws(idata, names, draws), rule)
    diagnostics.quadrature_error = round(spread, 4)
    if spread > QUADRATURE_TOLERANCE:
        diagnostics.failures.append(
            f"quadrature error varies by {spread:.2f} nats over {draws} posterior draws "
            f"(> {QUADRATURE_TOLERANCE}): the quadrature is too coarse for raters this sharp "
            "against passage_sd, so the draws are not the model's posterior"
        )
