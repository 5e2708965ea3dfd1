"""Time-to-ESS of the bias study's Bayesian model: a straightforward PyMC model vs assay's.

Both fit the same seed-scale study (4,500 passages, 3 raters, 5 publishers, 150 textbooks;
simulated ratings rounded to 0.5 like LLM answers) in one run on this machine:

- straightforward: intercept + publisher effects + textbook effects + one (centred) effect per
  passage, unconstrained rater offsets and per-rater noise, PyMC's default NUTS;
- assay: assay.bias.bayes (sum-to-zero rater offsets, no separate intercept; passage, textbook
  and publisher effects integrated out analytically, the effects then drawn from their exact
  conditional posteriors) sampled with nutpie.

ESS is measured on the quantity both models identify: each publisher's mean as the average
rater sees it (straightforward: intercept + publisher effect + mean rater offset; assay: the
publisher effect). The slowest publisher's bulk ESS counts.

The straightforward run is capped (``--baseline-draws``) to keep the benchmark bounded, so its
time to the target ESS is extrapolated: warm-up time + draw time x target / ESS reached,
splitting wall time between warm-up and draws in proportion to their iterations and assuming
ESS grows linearly with draws (optimistic for a chain that has not converged). assay's run
reports the same quantity, measured. Both times include model compilation (PyMC compiles
inside pm.sample; nutpie's compile time is also printed on its own).

    python benchmarks/bayes_bench.py [--target-ess 1000] [--baseline-draws 300]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from assay.bias.bayes import (
    BayesConfig,
    add_collapsed_effects,
    build_model,
    diagnose,
    prepare,
    sample,
)
from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings


def _straightforward_model(data: Any) -> Any:
    import pymc as pm

    with pm.Model(coords=data.coords) as model:
        intercept = pm.Normal("intercept", 0.0, 1.0)
        publisher = pm.Normal("publisher_effect", 0.0, 1.0, dims="publisher")
        textbook_sd = pm.HalfNormal("textbook_sd", 0.5)
        textbook = pm.Normal("textbook_effect", 0.0, textbook_sd, dims="textbook")
        passage_sd = pm.HalfNormal("passage_sd", 1.0)
        mean = intercept + publisher[data.passage_publisher] + textbook[data.passage_textbook]
        passage = pm.Normal("passage_effect", mean, passage_sd, dims="passage")
        offset = pm.Normal("rater_offset", 0.0, 1.0, dims="rater")
        noise = pm.HalfNormal("rater_sd", 1.0, dims="rater")
        pm.Normal(
            "y",
            mu=passage[data.obs_passage] + offset[data.obs_rater],
            sigma=noise[data.obs_rater],
            observed=data.y,
        )
    return model


def _min_ess(draws: np.ndarray) -> float:
    """Smallest bulk ESS over publishers; draws is chain x draw x publisher."""
    import arviz as az

    return float(min(az.ess(draws[:, :, j]) for j in range(draws.shape[2])))


def _time_to_ess(total_s: float, tune: int, draws: int, ess: float, target: float) -> float:
    per_iteration = total_s / (tune + draws)
    return per_iteration * tune + per_iteration * draws * target / max(ess, 1e-9)


def run_baseline(data: Any, draws: int, tune: int, seed: int) -> dict[str, float]:
    import arviz as az
    import pymc as pm

    model = _straightforward_model(data)
    started = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=draws, tune=tune, chains=4, cores=2, random_seed=seed, progressbar=False,
            compute_convergence_checks=False,
        )  # fmt: skip
    total = time.perf_counter() - started
    post = idata.posterior
    identified = (
        post["intercept"] + post["publisher_effect"] + post["rater_offset"].mean("rater")
    ).transpose("chain", "draw", "publisher")
    rhat = az.rhat(post[["intercept", "rater_offset"]])
    return {
        "seconds": total,
        "ess": _min_ess(identified.to_numpy()),
        "rhat_intercept": float(rhat["intercept"]),
        "rhat_offsets_max": float(rhat["rater_offset"].max()),
        "draws": draws,
        "tune": tune,
    }


def run_assay(data: Any, draws: int, tune: int, seed: int) -> dict[str, float]:
    model = build_model(data)
    started = time.perf_counter()
    idata = sample(model, BayesConfig(draws=draws, tune=tune, chains=4, cores=2, seed=seed))
    add_collapsed_effects(idata, data, seed)
    total = time.perf_counter() - started
    compile_s = float(idata.attrs.get("compile_s", 0.0))
    diagnostics = diagnose(idata)
    effect = idata.posterior["publisher_effect"].transpose("chain", "draw", "publisher")
    return {
        "seconds": total,
        "ess": _min_ess(effect.to_numpy()),
        "rhat_max": diagnostics.rhat_max,
        "passed": float(diagnostics.passed),
        "compile_s": compile_s,
        "draws": draws,
        "tune": tune,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-ess", type=float, default=1000.0)
    parser.add_argument("--baseline-draws", type=int, default=300)
    parser.add_argument("--baseline-tune", type=int, default=300)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    corpus = generate_corpus(SyntheticSpec(n_passages=4500, n_textbooks=150, seed=args.seed))
    ratings = simulate_ratings(corpus, seed=args.seed, round_to=0.5)
    data = prepare(ratings, "interval")
    print(
        f"study: {len(data.y)} ratings, {len(data.passages)} passages, {len(data.raters)} "
        f"raters, {len(data.publishers)} publishers, {len(data.textbooks or [])} textbooks"
    )

    ours = run_assay(data, args.draws, args.tune, args.seed)
    ours_tte = _time_to_ess(ours["seconds"], args.tune, args.draws, ours["ess"], args.target_ess)
    print(
        f"assay (nutpie, marginalised, identified): {ours['seconds']:.1f} s "
        f"({ours['compile_s']:.1f} s of it compiling) for "
        f"{args.tune}+{args.draws} x 4 chains; min publisher bulk ESS {ours['ess']:.0f}; "
        f"max R-hat {ours['rhat_max']:.4f}; diagnostics passed: {bool(ours['passed'])}"
    )

    base = run_baseline(data, args.baseline_draws, args.baseline_tune, args.seed)
    base_tte = _time_to_ess(
        base["seconds"], args.baseline_tune, args.baseline_draws, base["ess"], args.target_ess
    )
    print(
        f"straightforward (PyMC NUTS, all passage effects, free offsets): {base['seconds']:.1f} s "
        f"for {args.baseline_tune}+{args.baseline_draws} x 4 chains (capped); min publisher "
        f"bulk ESS {base['ess']:.0f}; R-hat intercept {base['rhat_intercept']:.3f}, rater "
        f"offsets max {base['rhat_offsets_max']:.3f}"
    )
    print(
        f"time to bulk ESS {args.target_ess:.0f} on the publisher means: straightforward "
        f"{base_tte:.1f} s (extrapolated), assay {ours_tte:.1f} s"
    )
    print(f"ratio (straightforward / assay): {base_tte / ours_tte:.1f}x")


if __name__ == "__main__":
    main()
