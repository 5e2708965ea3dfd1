"""Wall time of the default classifier training run, and its Ray speed-up over one worker.

    python benchmarks/train_bench.py            # the default run: all models, 5x5 CV, tuning
    python benchmarks/train_bench.py --quick    # all models, 5x1 CV, 2 candidates

Both runs use the same seed and data; each starts its own local Ray (as `assay train` does),
first with every core, then with one worker. Prints both wall times and the ratio measured in
this one invocation, checks the two runs produced identical out-of-fold predictions, and
reports the selected model's mean ROC-AUC. Targets (issue 2): default run <= 300 s on a
2-core machine, speed-up >= 1.7x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 300.0
TARGET_SPEEDUP = 1.7


def _config(quick: bool, workers: int | None) -> Any:
    from assay.classify.config import TrainConfig

    if quick:
        return TrainConfig(repeats=1, tuning_iter=2, workers=workers)
    return TrainConfig(workers=workers)


def _run(
    dataset: Path, vif_csv: Path, out: Path, quick: bool, workers: int | None
) -> dict[str, Any]:
    import ray

    from assay.classify.stages import run_evaluation, run_training
    from assay.parallel import init_ray

    if ray.is_initialized():
        ray.shutdown()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    init_ray(workers)
    ray_start = time.perf_counter() - start
    summary = run_training(dataset, _config(quick, workers), out / "train", progress=False)
    train = time.perf_counter() - start - ray_start
    evaluation = run_evaluation(out / "train", vif_csv, out / "eval")
    total = time.perf_counter() - start
    ray.shutdown()
    timings = json.loads((out / "train" / "cv" / "summary.json").read_text())["timings"]
    return {
        "load": (load_before, os.getloadavg()[0]),
        "cpu": timings["unit_cpu_seconds"],
        "ray_start": ray_start,
        "train": train,
        "total": total,
        "summary": summary,
        "evaluation": evaluation,
        "oof": (out / "train" / "cv" / "oof.csv").read_text(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5x1 CV, 2 candidates per model")
    parser.add_argument("--workers", type=int, default=None, help="parallel run's cap (all)")
    parser.add_argument("--out", type=Path, default=None, help="keep run folders here")
    args = parser.parse_args(argv)

    from assay.classify.vif import run_vif
    from assay.data.wdbc import load_dataset, write_dataset_csv
    from assay.obs.logging import configure_logging

    configure_logging(level="warning")
    root = args.out or Path(tempfile.mkdtemp(prefix="assay-train-bench-"))
    dataset = root / "dataset.csv"
    write_dataset_csv(load_dataset(), dataset)
    run_vif(dataset, root)
    cores = args.workers or os.cpu_count() or 1

    parallel = _run(dataset, root / "vif.csv", root / f"workers-{cores}", args.quick, args.workers)
    serial = _run(dataset, root / "vif.csv", root / "workers-1", args.quick, 1)

    speedup = serial["train"] / parallel["train"]
    scalars = parallel["evaluation"]["scalar_metrics"]
    kind = "quick (5x1 CV, 2 candidates)" if args.quick else "default (5x5 CV, 3 candidates)"
    print(f"train_bench: {kind}, all 9 models, {cores} cores, runs in {root}")
    for name, run in ((f"workers={cores}", parallel), ("workers=1", serial)):
        print(
            f"  {name:10s} ray start {run['ray_start']:5.1f} s | training {run['train']:6.1f} s"
            f" | with ray start + evaluation {run['total']:6.1f} s | unit CPU {run['cpu']:6.1f} s"
            f" | load avg {run['load'][0]:.1f} -> {run['load'][1]:.1f}"
        )
    print(
        f"  speed-up (training, workers=1 / workers={cores}): {speedup:.2f}x "
        f"(target >= {TARGET_SPEEDUP}x)"
    )
    print(
        f"  parallel training wall time {parallel['train']:.1f} s (target <= {TARGET_SECONDS:.0f} s"
        f"{' for the default run' if args.quick else ''})"
    )
    print(
        f"  selected model: {parallel['summary']['selected_model']}, mean ROC-AUC "
        f"{scalars['roc_auc_mean']:.4f} [{scalars['roc_auc_ci_low']:.4f}, "
        f"{scalars['roc_auc_ci_high']:.4f}], threshold {scalars['clinical_threshold']:.4f} "
        f"-> held-out sensitivity {scalars['clinical_sensitivity_heldout_mean']:.4f}, "
        f"specificity {scalars['clinical_specificity_heldout_mean']:.4f}"
    )
    ideal = parallel["cpu"] / cores
    print(
        f"  work content: {parallel['cpu']:.0f} CPU-seconds in units -> {ideal:.0f} s on "
        f"{cores} idle cores (a machine shared with other jobs is slower: see load avg)"
    )
    same = parallel["oof"] == serial["oof"]
    print(f"  identical out-of-fold predictions with 1 and {cores} workers: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
