"""A PyMC hierarchical model of publisher effects, fitted with nutpie, with its diagnostics.

The model (named coords and dims, non-centred) for a rating ``y`` of passage ``p`` by rater
``r``::

    theta_p = publisher_effect[pub(p)] + textbook_effect[tb(p)] + passage_sd * z_p
    interval:  y ~ Normal(theta_p + rater_offset[r], rater_scale[r])
    binary:    y ~ Bernoulli(logit = (theta_p + rater_offset[r]) / rater_scale[r])
    ordinal:   y ~ OrderedLogistic((theta_p + rater_offset[r]) / rater_scale[r],
                                   cutpoints / rater_scale[r])

Identification: rater offsets sum to zero (ZeroSumNormal), so a publisher effect is the
publisher's mean as the *average rater* sees it, and there is no separate intercept to trade
off against the publisher effects. On the logit scales the rater scales are relative (log
scales sum to zero); in the ordinal model the cutpoints carry the overall level, so publisher
effects sum to zero there as well.

Speed: in the interval model the passage effects are integrated out analytically. Given the
other parameters, a passage's ratings depend on theta_p only through the precision-weighted
mean of its offset-corrected ratings, so the likelihood is computed from per-passage sufficient
statistics (weights, weighted mean, within-passage sum of squares) and the sampler never sees
thousands of passage parameters. Passage effects are drawn afterwards from their exact
conditional posterior for the posterior predictive check.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.bias.aggregate import Scale, has_textbooks, ordinal_levels, valid_ratings
from assay.errors import AssayError
from assay.obs.logging import get_logger

log = get_logger(__name__)

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100
BFMI_MIN = 0.3
HDI_PROB = 0.95
NO_TEXTBOOK = "(no textbook)"


class DiagnosticsError(AssayError):
    """The posterior failed its convergence diagnostics; results are not to be trusted."""

    exit_code = 4


@dataclass(frozen=True)
class BayesConfig:
    """How to fit: chains, draws, sampler and seed."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    seed: int = 42
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    target_accept: float = 0.9
    marginalise: bool = True
    predictive_draws: int = 100


@dataclass
class ModelData:
    """Integer-coded ratings and the coordinates of every dimension."""

    scale: Scale
    publishers: list[str]
    raters: list[str]
    passages: list[str]
    textbooks: list[str] | None
    passage_publisher: np.ndarray
    passage_textbook: np.ndarray | None
    obs_passage: np.ndarray
    obs_rater: np.ndarray
    y: np.ndarray
    levels: np.ndarray | None = None

    @property
    def coords(self) -> dict[str, list[str]]:
        coords = {
            "publisher": self.publishers,
            "rater": self.raters,
            "passage": self.passages,
            "obs": [str(i) for i in range(len(self.y))],
        }
        if self.textbooks is not None:
            coords["textbook"] = self.textbooks
        if self.levels is not None:
            coords["cutpoint"] = [
                f"{a:g}|{b:g}" for a, b in zip(self.levels[:-1], self.levels[1:], strict=True)
            ]
        return coords


def prepare(ratings: pd.DataFrame, scale: Scale) -> ModelData:
    """Code the valid ratings as integer indices (textbooks nested within publishers)."""
    valid = valid_ratings(ratings, scale)
    passages = valid.drop_duplicates("passage_id").set_index("passage_id")
    passage_ids = sorted(passages.index)
    publishers = sorted(passages["publisher"].unique())
    raters = sorted(valid["rater"].unique())
    passage_index = {p: i for i, p in enumerate(passage_ids)}
    pub_index = {p: i for i, p in enumerate(publishers)}
    passage_publisher = passages.loc[passage_ids, "publisher"].map(pub_index).to_numpy()
    textbooks = passage_textbook = None
    if has_textbooks(valid):
        nested = (
            passages.loc[passage_ids, "publisher"].astype(str)
            + " / "
            + passages.loc[passage_ids, "textbook"].fillna(NO_TEXTBOOK).astype(str)
        )
        textbooks = sorted(nested.unique())
        tb_index = {t: i for i, t in enumerate(textbooks)}
        passage_textbook = nested.map(tb_index).to_numpy()
    y = valid["value"].to_numpy(float)
    levels = None
    if scale == "ordinal":
        levels = ordinal_levels(valid)
        y = np.searchsorted(levels, y).astype(float)
    return ModelData(
        scale=scale,
        publishers=[str(p) for p in publishers],
        raters=[str(r) for r in raters],
        passages=[str(p) for p in passage_ids],
        textbooks=textbooks,
        passage_publisher=passage_publisher.astype(int),
        passage_textbook=None if passage_textbook is None else passage_textbook.astype(int),
        obs_passage=valid["passage_id"].map(passage_index).to_numpy().astype(int),
        obs_rater=valid["rater"].map({r: i for i, r in enumerate(raters)}).to_numpy().astype(int),
        y=y if scale != "binary" else y.astype(int),
        levels=levels,
    )


def _dense(data: ModelData) -> tuple[np.ndarray, np.ndarray]:
    """Passages x raters ratings (0 where missing) and the 0/1 mask of present ratings."""
    shape = (len(data.passages), len(data.raters))
    values, mask = np.zeros(shape), np.zeros(shape)
    values[data.obs_passage, data.obs_rater] = data.y
    mask[data.obs_passage, data.obs_rater] = 1.0
    return values, mask


def _marginal_normal_logp(
    values: np.ndarray, mask: np.ndarray, passage_mean: Any, passage_sd: Any, offset: Any, sd: Any
) -> Any:
    """log p(ratings | parameters) with every passage effect integrated out.

    For passage p with ratings y_pr, weights w_r = 1/sd_r^2 and W_p = sum_r w_r, let
    ybar_p be the weighted mean of y_pr - offset_r and SS_p the weighted within-passage sum of
    squares around it. Then

        prod_r N(y_pr | theta_p + offset_r, sd_r) integrated against N(theta_p | m_p, tau)
          = prod_r (2 pi sd_r^2)^(-1/2) * exp(-SS_p / 2) * sqrt(2 pi / W_p)
            * N(ybar_p | m_p, sqrt(1/W_p + tau^2)).

    Every per-passage sum is a product of a constant passages x raters matrix with a rater
    vector, so one evaluation costs a few matrix-vector products over the ratings.
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
    log_2pi = math.log(2 * math.pi)
    rater_terms = -0.5 * (n_per_rater * (log_2pi + 2 * pt.log(sd))).sum()
    marginal_var = 1.0 / total_weight + passage_sd**2
    between = -0.5 * (pt.log(marginal_var) + (mean - passage_mean) ** 2 / marginal_var)
    return rater_terms + (-0.5 * within - 0.5 * pt.log(total_weight) + between).sum()


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
    values, mask = _dense(data)
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


def build_model(data: ModelData, *, marginalise: bool = True) -> Any:
    """The PyMC model for the study's scale (see the module docstring).

    ``marginalise`` integrates the passage effects out: exactly for the Normal likelihood,
    by Gauss-Hermite quadrature over grouped passage signatures for the logit likelihoods.
    ``marginalise=False`` keeps one non-centred parameter per passage.
    """
    import pymc as pm

    interval = data.scale == "interval"
    with pm.Model(coords=data.coords) as model:
        if data.scale == "ordinal":
            publisher_effect = pm.ZeroSumNormal("publisher_effect", sigma=1.5, dims="publisher")
        else:
            prior_sd = 1.0 if interval else 1.5
            publisher_effect = pm.Normal("publisher_effect", 0.0, prior_sd, dims="publisher")
        passage_mean = publisher_effect[data.passage_publisher]
        if data.textbooks is not None:
            textbook_sd = pm.HalfNormal("textbook_sd", 0.5 if interval else 1.0)
            textbook_z = pm.Normal("textbook_z", 0.0, 1.0, dims="textbook")
            textbook_effect = pm.Deterministic(
                "textbook_effect", textbook_sd * textbook_z, dims="textbook"
            )
            passage_mean = passage_mean + textbook_effect[data.passage_textbook]
        passage_sd = pm.HalfNormal("passage_sd", 1.0)
        rater_offset = pm.ZeroSumNormal(
            "rater_offset", sigma=0.5 if interval else 1.0, dims="rater"
        )
        if interval:
            rater_scale = pm.HalfNormal("rater_scale", 1.0, dims="rater")
        else:
            log_scale = pm.ZeroSumNormal("rater_log_scale", sigma=0.5, dims="rater")
            rater_scale = pm.Deterministic("rater_scale", pm.math.exp(log_scale), dims="rater")
        cutpoints = None
        if data.scale == "ordinal":
            assert data.levels is not None
            k = len(data.levels)
            cutpoints = pm.Normal(
                "cutpoints",
                mu=np.linspace(-2, 2, k - 1),
                sigma=2.0,
                transform=pm.distributions.transforms.ordered,
                initval=np.linspace(-2, 2, k - 1),
                dims="cutpoint",
            )
        if marginalise:
            if interval:
                values, mask = _dense(data)
                loglik = _marginal_normal_logp(
                    values, mask, passage_mean, passage_sd, rater_offset, rater_scale
                )
            else:
                sig = signatures(data)
                _, log_weights = quadrature()
                per_node = node_loglik(
                    sig,
                    data.scale,
                    passage_mean,
                    passage_sd,
                    rater_offset,
                    rater_scale,
                    cutpoints,
                    n_levels=0 if data.levels is None else len(data.levels),
                )
                loglik = (
                    sig.counts * pm.math.logsumexp(per_node + log_weights, axis=1).flatten()
                ).sum()
            pm.Potential("ratings_marginal_loglik", loglik)
            return model
        passage_z = pm.Normal("passage_z", 0.0, 1.0, dims="passage")
        theta = passage_mean + passage_sd * passage_z
        latent = theta[data.obs_passage] + rater_offset[data.obs_rater]
        scale = rater_scale[data.obs_rater]
        if interval:
            pm.Normal("y", mu=latent, sigma=scale, observed=data.y, dims="obs")
        elif data.scale == "binary":
            pm.Bernoulli("y", logit_p=latent / scale, observed=data.y, dims="obs")
        else:
            assert cutpoints is not None
            pm.OrderedLogistic(
                "y",
                eta=latent / scale,
                cutpoints=cutpoints[None, :] / scale[:, None],
                observed=data.y.astype(int),
                dims="obs",
            )
    return model


def sample(model: Any, config: BayesConfig, *, progress: bool = False) -> Any:
    """Draw from the posterior with nutpie (default) or PyMC's NUTS, seeded."""
    import os

    import pymc as pm

    cores = config.cores or min(config.chains, os.cpu_count() or 1)
    if config.sampler == "nutpie":
        import nutpie

        started = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        compile_s = time.perf_counter() - started
        idata = nutpie.sample(
            compiled,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            seed=config.seed,
            target_accept=config.target_accept,
            progress_bar=progress,
        )
        idata.attrs["compile_s"] = compile_s  # sampling time = total minus this
        return idata
    with model:
        return pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            random_seed=config.seed,
            target_accept=config.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
        )


@dataclass
class Diagnostics:
    """Convergence checks over the model's parameters (per-passage effects reported apart)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    bfmi_min: float
    ess_required: float
    checked: list[str]
    failures: list[str] = field(default_factory=list)
    worst: dict[str, str] = field(default_factory=dict)
    passage_level: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def parameter_names(idata: Any) -> list[str]:
    """The posterior variables the diagnostics gate on: everything but per-passage effects."""
    posterior = idata.posterior
    return [
        str(name)
        for name in posterior.data_vars
        if "passage" not in posterior[name].dims and not str(name).endswith("__")
    ]


def diagnose(idata: Any) -> Diagnostics:
    """R-hat, bulk/tail ESS, divergences and BFMI against the fixed thresholds."""
    import arviz as az

    names = parameter_names(idata)
    summary = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
    chains = idata.posterior.sizes["chain"]
    ess_required = ESS_MIN_PER_CHAIN * chains
    divergences = (
        int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    )
    bfmi = az.bfmi(idata) if "energy" in idata.sample_stats else np.array([np.nan])
    diag = Diagnostics(
        rhat_max=float(summary["r_hat"].max()),
        ess_bulk_min=float(summary["ess_bulk"].min()),
        ess_tail_min=float(summary["ess_tail"].min()),
        divergences=divergences,
        bfmi_min=float(np.min(bfmi)),
        ess_required=float(ess_required),
        checked=names,
        worst={
            "r_hat": str(summary["r_hat"].idxmax()),
            "ess_bulk": str(summary["ess_bulk"].idxmin()),
            "ess_tail": str(summary["ess_tail"].idxmin()),
        },
    )
    if not diag.rhat_max <= RHAT_MAX:
        diag.failures.append(f"R-hat {diag.rhat_max:.3f} > {RHAT_MAX} ({diag.worst['r_hat']})")
    if not diag.ess_bulk_min >= ess_required:
        diag.failures.append(f"bulk ESS {diag.ess_bulk_min:.0f} < {ess_required}")
    if not diag.ess_tail_min >= ess_required:
        diag.failures.append(f"tail ESS {diag.ess_tail_min:.0f} < {ess_required}")
    if divergences:
        diag.failures.append(f"{divergences} divergent transitions")
    if not diag.bfmi_min >= BFMI_MIN:
        diag.failures.append(f"BFMI {diag.bfmi_min:.2f} < {BFMI_MIN}")
    passage_vars = [
        str(n) for n in idata.posterior.data_vars if n not in names and not str(n).endswith("__")
    ]
    if passage_vars:
        extra = az.summary(idata, var_names=passage_vars, kind="diagnostics", round_to="none")
        diag.passage_level = {
            "rhat_max": float(extra["r_hat"].max()),
            "ess_bulk_min": float(extra["ess_bulk"].min()),
        }
    return diag


@dataclass
class FitResult:
    idata: Any
    data: ModelData
    diagnostics: Diagnostics
    timings: dict[str, float]


def fit(
    ratings: pd.DataFrame,
    scale: Scale,
    config: BayesConfig | None = None,
    *,
    progress: bool = False,
) -> FitResult:
    """Prepare, build, sample, check and add the prior/posterior predictive draws."""
    config = config or BayesConfig()
    data = prepare(ratings, scale)
    model = build_model(data, marginalise=config.marginalise)
    started = time.perf_counter()
    idata = sample(model, config, progress=progress)
    sampled = time.perf_counter()
    from assay.bias import predictive

    predictive.add_predictive(idata, model, data, config)
    finished = time.perf_counter()
    diagnostics = diagnose(idata)
    compile_s = float(idata.attrs.get("compile_s", 0.0))
    timings = {
        "compile_s": compile_s,
        "sampling_s": sampled - started - compile_s,
        "predictive_s": finished - sampled,
    }
    log.info("bayes.fit", scale=scale, passed=diagnostics.passed, **timings)
    return FitResult(idata=idata, data=data, diagnostics=diagnostics, timings=timings)
