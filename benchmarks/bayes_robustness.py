"""Robustness of the bias study's Bayesian fit: divergences, R-hat and ESS over many seeds.

For each design cell (the small design of the pipeline test - 60 passages, 10 textbooks - and
the default design of ``assay bias-study`` - 600 passages, 60 textbooks - on the interval,
binary and ordinal scales; ordinal ratings are the scores' nearest anchors -2..+2) it
generates ``--seeds`` synthetic corpora, rates them with three in-process simulated raters
(the offsets and noise of the simulated endpoint's default models) and fits each with
``assay.bias.bayes.fit`` exactly as the study does (4 chains x 1,000 + 1,000 draws, the
design's target acceptance, at most one automatic re-run at a higher one when the first run
diverges). Per fit it prints the divergences (first run and final), max R-hat, min bulk and
tail ESS, seconds (wall and CPU) and the load average; per cell the number of fits with 0
divergences and R-hat <= 1.01.

Every fit is appended to ``--out`` (JSON lines) as it finishes; ``--resume`` skips fits already
there, so a long run interrupted loses nothing. Target: 20 of 20 clean fits in every cell.

    python benchmarks/bayes_robustness.py [--seeds 20] [--cells small-interval,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from assay.bias.aggregate import Scale
from assay.bias.bayes import BayesConfig, fit
from assay.bias.synthetic import SimulatedRater, SyntheticSpec, generate_corpus, simulate_ratings
from assay.sim.config import default_models

CELLS: dict[str, tuple[int, int, Scale]] = {
    "small-interval": (60, 10, "interval"),
    "small-binary": (60, 10, "binary"),
    "default-interval": (600, 60, "interval"),
    "default-binary": (600, 60, "binary"),
    "small-ordinal": (60, 10, "ordinal"),
    "default-ordinal": (600, 60, "ordinal"),
}


def _raters() -> list[Any]:
    return [SimulatedRater(m.name, offset=m.bias_offset, noise=m.noise) for m in default_models()]


def fit_once(cell: str, seed: int, draws: int, tune: int) -> dict[str, Any]:
    passages, textbooks, scale = CELLS[cell]
    corpus = generate_corpus(SyntheticSpec(n_passages=passages, n_textbooks=textbooks, seed=seed))
    ratings = simulate_ratings(corpus, _raters(), seed=seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = fit(ratings, scale, BayesConfig(draws=draws, tune=tune, seed=seed))
    diag = result.diagnostics
    return {
        "cell": cell,
        "seed": seed,
        "divergences_first_run": int(diag.attempts[0]["divergences"]),
        "runs": len(diag.attempts),
        "divergences": diag.divergences,
        "rhat_max": round(diag.rhat_max, 4),
        "ess_bulk_min": round(diag.ess_bulk_min),
        "ess_tail_min": round(diag.ess_tail_min),
        "passed": diag.passed,
        "failures": diag.failures,
        "quadrature_error": diag.quadrature_error,
        "worst": diag.worst,
        "clean": diag.divergences == 0 and diag.rhat_max <= 1.01,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "compile_s": round(result.timings["compile_s"], 1),
    }


def _commit() -> str:
    """This checkout's commit, so rows from different versions of the model can be told apart."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )
    return done.stdout.strip() or "unknown"


def summarise(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| cell | fits | clean (0 div., R-hat <= 1.01) | all diagnostics passed | re-runs "
        "| max R-hat | min bulk ESS | min tail ESS | median s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in CELLS:
        mine = [r for r in rows if r["cell"] == cell]
        if not mine:
            continue
        seconds = sorted(r["seconds"] for r in mine)
        lines.append(
            f"| {cell} | {len(mine)} | {sum(r['clean'] for r in mine)} "
            f"| {sum(r['passed'] for r in mine)} | {sum(r['runs'] > 1 for r in mine)} "
            f"| {max(r['rhat_max'] for r in mine):.4f} "
            f"| {min(r['ess_bulk_min'] for r in mine)} | {min(r['ess_tail_min'] for r in mine)} "
            f"| {seconds[len(seconds) // 2]:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="fits per cell (seeds 0..N-1)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("build/bayes_robustness.jsonl"))
    parser.add_argument("--resume", action="store_true", help="skip fits already in --out")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"unknown cell(s) {unknown}; choose from {sorted(CELLS)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: list[dict[str, Any]] = []
    if args.resume and args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line]
    seen = {(r["cell"], r["seed"]) for r in done}
    commit = _commit()  # before the first fit: the code this process imported
    with args.out.open("a" if args.resume else "w") as sink:
        for cell in cells:
            for seed in range(args.seeds):
                if (cell, seed) in seen:
                    continue
                row = {**fit_once(cell, seed, args.draws, args.tune), "commit": commit}
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                done.append(row)
                print(json.dumps(row), flush=True)
    print(summarise([r for r in done if r["cell"] in cells]))


if __name__ == "__main__":
    main()
