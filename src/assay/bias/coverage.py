"""Coverage and simulation-based calibration (SBC) of the interval model's posterior.

Each replicate draws the textbook and passage spreads and the rater offsets and scales from
the model's own priors (``pm.draw`` on the built model's variables, so the priors are the
fitted ones by construction), then publisher, textbook and passage effects and ratings
(``assay.bias.simulate``), fits them with the project's marginalised interval model and
sampler (``assay.bias.priors``, ``assay.bias.likelihood``, ``assay.bias.sampling``,
``assay.bias.fit.add_collapsed_effects``) and records, per parameter, whether the central
50% and 90% intervals and the study's 95% HDI contain the drawn value, and the value's rank
among thinned posterior draws. Over replicates from the prior, a calibrated posterior covers
at the nominal rate and its ranks are uniform (Talts et al. 2018).

The ratings enter the model as ``pm.Data`` so nutpie compiles a design once and each
replicate only swaps the data in; a passage nobody rated stays in the compiled layout with a
vanishing pseudo-rating (``fixed_layout``) and its effects are drawn given the data kept.
``assay.bias.model_normal.build_normal_model`` builds the same log density from constants
(a test checks that both agree, with and without unrated passages).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from assay.bias.collapsed import Nesting, RatingCells, collapsed_normal_logp
from assay.bias.design import ModelData, dense
from assay.bias.diagnostics import diagnose
from assay.bias.fit import HDI_PROB, add_collapsed_effects
from assay.bias.likelihood import PUBLISHER_PRIOR_SD
from assay.bias.priors import rater_and_spread
from assay.bias.sampling import BayesConfig, compile_model, sample, target_accept_for
from assay.bias.simulate import (
    Design,
    Hyper,
    Truth,
    Variant,
    draw_effects,
    draw_scores,
    model_data,
)

CENTRAL_LEVELS = (0.5, 0.9)
RANK_DRAWS = 99
"""Thinned posterior draws a true value is ranked among (ranks 0..99)."""
RANK_BINS = 10
HDI_KEY = f"hdi{round(HDI_PROB * 100)}"
FIT_SETTINGS = BayesConfig(
    draws=500,
    tune=300,
    chains=2,
    cores=1,
    retry_failed=False,
    predictive_draws=0,
)
"""Per replicate: 2 chains x 500 draws after 300 warm-up on one core, no re-run."""


def build_data_model(data: ModelData) -> Any:
    """The marginalised interval model with the ratings as ``pm.Data`` (``values``,
    ``mask``) instead of constants, so one compilation serves every replicate of a design."""
    import pymc as pm

    values, mask = dense(data)
    with pm.Model(coords=data.coords) as model:
        shared_values = pm.Data("values", values)
        shared_mask = pm.Data("mask", mask)
        common = rater_and_spread(data)
        nesting = Nesting.of(data)
        cells = RatingCells.per_passage(shared_values, shared_mask, nesting.passage_group)
        loglik = collapsed_normal_logp(
            cells, nesting, common.passage_sd,
            common.textbook_sd, PUBLISHER_PRIOR_SD["interval"], common.rater_offset,
            common.rater_scale,
        )  # fmt: skip
        pm.Potential("ratings_marginal_loglik", loglik)
    return model


def prior_hypers(design: Design, n: int, seed: int) -> list[Hyper]:
    """``n`` draws of the sampled parameters from the priors of the model fitted to
    ``design``."""
    import pymc as pm

    full = np.zeros((design.n_passages, design.raters))
    model = build_data_model(model_data(design, full)[0])
    names = ("textbook_sd", "passage_sd", "rater_offset", "rater_scale")
    draws = pm.draw([model[name] for name in names], draws=n, random_seed=seed)
    return [
        Hyper(float(draws[0][i]), float(draws[1][i]), draws[2][i], draws[3][i]) for i in range(n)
    ]


UNRATED_WEIGHT = 1e-9
"""Mask entry of the pseudo-rating that keeps a passage nobody rated in the compiled design:
its weight vanishes, so it changes the log density by O(1e-9) up to a constant (a test
checks this against the model built without the passage)."""


def fixed_layout(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and mask of the full design from passages x raters scores (NaN = missing),
    with a vanishing pseudo-rating (rater 0) for passages nobody rated."""
    present = ~np.isnan(scores)
    values = np.where(present, scores, 0.0)
    mask = present.astype(float)
    mask[~present.any(axis=1), 0] = UNRATED_WEIGHT
    return values, mask


@dataclass
class Fitter:
    """Fits replicates of one design with one compiled model: the hyperparameters are
    sampled on the full design (``fixed_layout``), the effects drawn given the data kept."""

    design: Design
    config: BayesConfig
    _compiled: tuple[Any, Any] | None = None

    def compiled(self) -> tuple[Any, Any]:
        if self._compiled is None:
            full = model_data(self.design, np.zeros((self.design.n_passages, self.design.raters)))
            model = build_data_model(full[0])
            self._compiled = (model, compile_model(model, self.config)[0])
        return self._compiled

    def __call__(self, scores: np.ndarray) -> tuple[Any, ModelData]:
        model, compiled = self.compiled()
        values, mask = fixed_layout(scores)
        data = model_data(self.design, scores)[0]
        idata = sample(
            model,
            self.config,
            target_accept=target_accept_for(data),
            compiled=compiled.with_data(values=values, mask=mask),
        )
        add_collapsed_effects(idata, data, self.config.seed)
        return idata, data


def _hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    ordered = np.sort(draws)
    width = int(np.floor(prob * len(ordered)))
    start = int(np.argmin(ordered[width:] - ordered[: len(ordered) - width]))
    return float(ordered[start]), float(ordered[start + width])


def _check(name: str, truth: float, draws: np.ndarray) -> dict[str, Any]:
    """One parameter of one replicate: covered by each interval, and the SBC rank."""
    row: dict[str, Any] = {"parameter": name, "truth": float(truth)}
    for level in CENTRAL_LEVELS:
        low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        row[f"central{round(level * 100)}"] = bool(low <= truth <= high)
    low, high = _hdi(draws)
    row[HDI_KEY] = bool(low <= truth <= high)
    thinned = draws[np.linspace(0, len(draws) - 1, RANK_DRAWS).astype(int)]
    row["rank"] = int((thinned < truth).sum())
    return row


def _stacked(idata: Any, name: str) -> np.ndarray:
    """Posterior draws as samples x components (one column for a scalar)."""
    array = idata.posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...)
    values = array.to_numpy()
    return values.reshape(len(values), -1)


def checks(idata: Any, data: ModelData, truth: Truth) -> list[dict[str, Any]]:
    """Every family's components: drawn value against the posterior. Publishers of the design
    that left the data (nothing of them rated) count as not covered."""
    publishers = [int(name.removeprefix("pub-")) for name in data.publishers]
    effect = _stacked(idata, "publisher_effect")
    true_effect = truth.publisher_effect[publishers]
    rows = []
    for j in range(len(publishers)):
        rows.append(_check("publisher_effect", true_effect[j], effect[:, j]))
        contrast = effect[:, j] - effect.mean(axis=1)
        rows.append(_check("contrast", true_effect[j] - true_effect.mean(), contrast))
    hyper = truth.hyper
    for name in ("textbook_sd", "passage_sd"):
        rows.append(_check(name, getattr(hyper, name), _stacked(idata, name)[:, 0]))
    for name in ("rater_offset", "rater_scale"):
        draws = _stacked(idata, name)
        for r, value in enumerate(getattr(hyper, name)):
            rows.append(_check(name, value, draws[:, r]))
    missing = len(truth.publisher_effect) - len(publishers)
    for _ in range(missing):
        for family in ("publisher_effect", "contrast"):
            rows.append({"parameter": family, "truth": np.nan, "central50": False,
                         "central90": False, HDI_KEY: False, "rank": -1})  # fmt: skip
    return rows


@dataclass(frozen=True)
class StudyConfig:
    """A coverage study: design, replicates and sampler settings (one core)."""

    design: Design = field(default_factory=Design)
    replicates: int = 100
    seed: int = 2026
    bayes: BayesConfig = field(default_factory=lambda: FIT_SETTINGS)


def run_variant(
    study: StudyConfig, variant: Variant, hypers: list[Hyper], fitter: Fitter
) -> list[dict[str, Any]]:
    """Every replicate of one variant: per-parameter check rows plus the replicate's
    diagnostics. Replicate i uses the same drawn parameters and seeds in every variant."""
    rows: list[dict[str, Any]] = []
    for i, hyper in enumerate(hypers):
        rng = np.random.default_rng([study.seed, i])
        truth = draw_effects(study.design, hyper, PUBLISHER_PRIOR_SD["interval"], rng)
        scores = draw_scores(
            study.design, truth, variant, np.random.default_rng([study.seed, i, 1])
        )
        fitter.config = replace(fitter.config, seed=study.seed + i)
        idata, data = fitter(scores)
        diag = diagnose(idata)
        meta = {"variant": variant, "replicate": i, "diagnostics_passed": diag.passed,
                "divergences": diag.divergences, "ess_bulk_min": diag.ess_bulk_min,
                "ess_tail_min": diag.ess_tail_min, "rhat_max": diag.rhat_max,
                "failures": "; ".join(diag.failures),
                "missing_share": float(np.isnan(scores).mean())}  # fmt: skip
        rows.extend({**meta, **row} for row in checks(idata, data, truth))
    return rows


def _rank_test(ranks: np.ndarray) -> tuple[list[int], float]:
    """Counts of ranks in ``RANK_BINS`` equal bins and the chi-square p-value of uniformity."""
    counts = np.bincount(ranks * RANK_BINS // (RANK_DRAWS + 1), minlength=RANK_BINS)
    return [int(c) for c in counts], float(stats.chisquare(counts).pvalue)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant and parameter family: intervals checked, coverage of each interval, the
    SBC rank histogram and its chi-square p (components of a replicate pooled: contrasts and
    rater offsets sum to zero, so that p is approximate), and the share of replicates whose
    sampler passed every diagnostic."""
    frame = pd.DataFrame(rows)
    out = []
    for (variant, family), group in frame.groupby(["variant", "parameter"], sort=False):
        ranks = group["rank"].to_numpy()
        histogram, p_value = _rank_test(ranks[ranks >= 0])
        replicates = group.drop_duplicates("replicate")
        out.append(
            {
                "variant": variant,
                "parameter": family,
                "intervals": len(group),
                **{key: float(group[key].mean()) for key in ("central50", "central90", HDI_KEY)},
                "rank_histogram": histogram,
                "rank_chi2_p": p_value,
                "diagnostics_passed": float(replicates["diagnostics_passed"].mean()),
                "ess_bulk_median": float(replicates["ess_bulk_min"].median()),
                "missing_share": float(replicates["missing_share"].mean()),
            }
        )
    return out


def binomial_band(n: int, level: float, prob: float = 0.95) -> tuple[float, float]:
    """The central ``prob`` range of the coverage share among ``n`` independent intervals
    at nominal ``level``."""
    low, high = stats.binom.interval(prob, n, level)
    return float(low / n), float(high / n)


def markdown_table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | parameter | intervals | 50% central | 90% central | 95% HDI "
        "| SBC ranks (10 bins) | chi-square p | fits passing diagnostics | median min bulk ESS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(
            f"| {row['variant']} | {row['parameter']} | {row['intervals']} "
            f"| {row['central50']:.2f} | {row['central90']:.2f} | {row[HDI_KEY]:.2f} "
            f"| {' '.join(str(c) for c in row['rank_histogram'])} | {row['rank_chi2_p']:.3f} "
            f"| {row['diagnostics_passed']:.2f} | {row['ess_bulk_median']:.0f} |"
        )
    return "\n".join(lines)
