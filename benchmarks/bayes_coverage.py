"""Coverage and simulation-based calibration of the interval model, well-specified and not.

Each replicate draws the model's hyperparameters from its priors, then publisher, textbook and
passage effects and ratings from the model itself (nothing centred; ``assay.bias.simulate``),
and fits them with the project's marginalised interval model (``assay.bias.coverage``: one
nutpie compilation reused for every replicate, 2 chains x 500 draws after 300 warm-up on one
core). Reported per parameter family: the share of central 50% and 90% intervals and of the
study's 95% HDIs that contain the drawn value, and SBC ranks of the drawn value among 99
thinned draws (10 bins; chi-square test of uniformity). The misspecified variants bend the
same replicates' ratings (same parameters, same seeds): integer scores (rounded to the -2..+2
grid), clipping at +-2, refusals that depend on content (missing not at random) and a
rater-by-publisher interaction.

    python benchmarks/bayes_coverage.py [--replicates 100] [--quick] [--variants ...]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from assay.bias.coverage import (
    HDI_KEY,
    Fitter,
    StudyConfig,
    binomial_band,
    markdown_table,
    prior_hypers,
    run_variant,
    summarise,
)
from assay.bias.simulate import VARIANTS, Design, Variant

QUICK_DESIGN = Design(publishers=4, textbooks_per_publisher=3, passages_per_textbook=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument(
        "--quick", action="store_true", help=f"8 replicates of {QUICK_DESIGN.describe()}"
    )
    parser.add_argument("--out", type=Path, default=Path("build/bayes_coverage.jsonl"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    variants = [cast(Variant, v.strip()) for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    study = StudyConfig(replicates=args.replicates, seed=args.seed)
    if args.quick:
        study = replace(study, design=QUICK_DESIGN, replicates=8)
    started = time.perf_counter()
    hypers = prior_hypers(study.design, study.replicates, study.seed)
    fitter = Fitter(study.design, study.bayes)
    fitter.compiled()
    setup_s = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with args.out.open("w") as sink:
        for variant in variants:
            began = time.perf_counter()
            mine = run_variant(study, variant, hypers, fitter)
            for row in mine:
                sink.write(json.dumps(row, default=float) + "\n")
            rows.extend(mine)
            print(f"{variant}: {time.perf_counter() - began:.0f} s", flush=True)
    n = study.replicates * study.design.publishers
    bands = {level: binomial_band(n, level) for level in (0.5, 0.9, 0.95)}
    print(
        f"\nDesign: {study.design.describe()}; {study.replicates} replicates, seed {study.seed}; "
        f"{study.bayes.chains} chains x {study.bayes.draws} draws after {study.bayes.tune} "
        f"warm-up; {datetime.now(UTC):%Y-%m-%d}; setup {setup_s:.0f} s, total "
        f"{time.perf_counter() - started:.0f} s."
    )
    print(
        f"95% binomial band for {n} independent intervals: 50% -> "
        f"{bands[0.5][0]:.2f}-{bands[0.5][1]:.2f}, 90% -> {bands[0.9][0]:.2f}-"
        f"{bands[0.9][1]:.2f}, 95% -> {bands[0.95][0]:.2f}-{bands[0.95][1]:.2f} "
        f"({HDI_KEY} = the study's interval).\n"
    )
    print(markdown_table(summarise(rows)))


if __name__ == "__main__":
    main()
