"""One point of a scaling curve, run in its own process by ``scaling.py`` so that its memory is
its own: ``python benchmarks/_scaling_points.py CURVE N [options]`` prints one ``POINT {json}``
line. The parent samples the process tree's memory while the point runs."""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SIM_MODELS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}
STORE_BATCH = 100
"""Rows per append: the store writer appends what completed while the last batch was written."""


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _passages(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "passage_id": [f"s{i:07d}" for i in range(n)],
            "text": [f"Scaling passage {i}: the council debated the budget." for i in range(n)],
            "publisher": [f"pub{i % 5}" for i in range(n)],
        }
    )


def fanout(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Rate ``n`` passages with 3 simulated raters through Ray, as the rate step does."""
    from assay.bias.rating.fanout import rate_passages
    from assay.bias.store import RatingsStore
    from assay.llm.ensemble import Ensemble
    from assay.obs.metrics_llm import RecordingMetrics
    from assay.parallel import init_ray

    raters = {
        model: {
            "provider": kind,
            "model": model,
            "endpoints": [{"base_url": args.sim_url + ("/v1" if kind == "openai" else "")}],
            "rpm": 1_000_000,
            "max_tokens": 200,
        }
        for model, kind in SIM_MODELS.items()
    }
    ensemble = Ensemble.model_validate({"name": "scaling", "raters": raters})
    init_ray(2)
    folder = Path(tempfile.mkdtemp(prefix="scaling-fanout-"))
    passages = _passages(n)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    rate_passages(
        passages,
        ensemble,
        RatingsStore(folder),
        progress=False,
        cache="memory://",
        metrics=RecordingMetrics(),
    )
    seconds = time.perf_counter() - started
    cpu_s = cpu_seconds() - cpu_started
    # The driver's peak while rating, before the check below reads the whole store into memory.
    fanout_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stored = RatingsStore(folder).to_frame()
    calls = len(stored)
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "fanout_peak_mb": fanout_peak_mb,
        "calls": calls,
        "ok": int((stored["error"] == "").sum()),
        "calls_per_s": calls / seconds,
        "store_mb": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20,
    }


def _store_rows(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "passage_id": f"s{i:07d}",
            "publisher": f"pub{i % 5}",
            "rater": "sim-gpt",
            "score": float(i % 5 - 2),
            "error": "",
            "key": f"s{i:07d}|sim-gpt",
        }
        for i in range(start, start + count)
    ]


def store(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Append ``n`` rows in batches, then resume: a fresh store object reads the finished keys."""
    from assay.bias.store import open_ratings_store

    location = args.location or str(Path(tempfile.mkdtemp(prefix="scaling-store-")))
    writer = open_ratings_store(location)
    started = time.perf_counter()
    for start in range(0, n, STORE_BATCH):
        writer.append(_store_rows(start, min(STORE_BATCH, n - start)))
    append_s = time.perf_counter() - started
    writer.close()
    started = time.perf_counter()
    with open_ratings_store(location) as reader:
        finished = reader.finished_keys()
    resume_s = time.perf_counter() - started
    if len(finished) != n:
        raise RuntimeError(f"resume found {len(finished)} finished keys, wrote {n}")
    return {"append_s": append_s, "append_s_per_10k": append_s / n * 1e4, "resume_s": resume_s}


def _bayes_ratings(scale: str, ratings: int, seed: int) -> pd.DataFrame:
    """Simulated ratings of BABE's shape (11 outlets, 8 experts in three fixed panels of 5) for
    the binary and ordinal scales; the seed-scale textbook design (150 textbooks, 3 raters) for
    interval."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _bayes_studies import babe_panelled

    from assay.bias.synthetic import SyntheticSpec, generate_corpus, simulate_ratings

    if scale == "interval":
        spec = SyntheticSpec(n_passages=max(ratings // 3, 150), n_textbooks=150, seed=seed)
        return simulate_ratings(generate_corpus(spec), seed=seed, round_to=0.5)
    return babe_panelled(seed, max(ratings // 5, 50), scale)


def bayes(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fit the publisher model of ``args.scale`` to about ``n`` ratings (prepare + sample)."""
    from assay.bias.fit import fit
    from assay.bias.sampling import BayesConfig

    ratings = _bayes_ratings(args.scale, n, seed=7)
    config = BayesConfig(draws=args.draws, tune=args.draws, chains=2, cores=2, seed=7)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = fit(ratings, args.scale, config)
    seconds = time.perf_counter() - started
    diagnostics = result.diagnostics
    return {
        "ratings": int((ratings["error"] == "").sum()),
        "seconds": seconds,
        "cpu_s": cpu_seconds() - cpu_started,
        "compile_s": result.timings["compile_s"],
        "rhat_max": float(diagnostics.rhat_max),
        "ess_bulk_min": float(diagnostics.ess_bulk_min),
        "divergences": int(diagnostics.divergences),
        "passed": bool(diagnostics.passed),
    }


def _resampled_wdbc(multiple: int, folder: Path) -> Path:
    """WDBC's rows repeated ``multiple`` times with 1% feature noise (timing only: duplicated
    patients make the cross-validated figures meaningless, so none are reported)."""
    from assay.data.wdbc import FEATURE_NAMES, TARGET, load_dataset

    data = load_dataset()
    rng = np.random.default_rng(0)
    features = pd.concat([data.X[list(FEATURE_NAMES)]] * multiple, ignore_index=True)
    features = features * rng.normal(1.0, 0.01, size=features.shape)
    features[TARGET] = np.tile(data.y.to_numpy(), multiple)
    path = folder / "dataset.csv"
    features.to_csv(path, index=False, float_format="%.10g")
    return path


def train(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate a fixed protocol on WDBC x ``n`` rows with ``args.workers`` Ray CPUs."""
    from assay.classify.config import TrainConfig
    from assay.classify.stages import run_training
    from assay.parallel import init_ray

    folder = Path(tempfile.mkdtemp(prefix="scaling-train-"))
    dataset = _resampled_wdbc(n, folder)
    init_ray(args.workers)
    config = TrainConfig(
        repeats=1,
        tuning_iter=2,
        workers=args.workers,
        models=args.models.split(","),
        single_split=False,
    )
    started = time.perf_counter()
    run_training(dataset, config, folder / "train", progress=False)
    seconds = time.perf_counter() - started
    timings = json.loads((folder / "train" / "cv" / "summary.json").read_text())["timings"]
    return {"rows": 569 * n, "seconds": seconds, "cpu_s": timings["unit_cpu_seconds"]}


POINTS = {"fanout": fanout, "store": store, "bayes": bayes, "train": train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curve", choices=sorted(POINTS))
    parser.add_argument("n", type=int)
    parser.add_argument("--sim-url", default="")
    parser.add_argument("--location", default="", help="store location (s3://... or a folder)")
    parser.add_argument("--scale", default="interval")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", default="logistic_regression,random_forest")
    args = parser.parse_args()
    from assay.obs.logging import configure_logging

    configure_logging(level="warning")
    result = POINTS[args.curve](args.n, args)
    result["peak_rss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["pid"] = os.getpid()
    print("POINT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
