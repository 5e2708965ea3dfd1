"""Driver of test_ray_cluster.py: one small CV and one small fan-out on Ray, as a step runs them.

It joins the Ray that RAY_ADDRESS names (or starts a local one when unset, through the same
`assay.parallel.init_ray` every step uses) and prints one JSON line: the CV's per-unit results,
the ratings, the cluster's alive nodes and the node each CV unit and each rating call ran on.

Where work ran is recorded by a wrapper around the CV unit function and a subclass of the
rating worker; both call the project's code and return its results unchanged. They live in
this script (`__main__`), so Ray ships them to the workers by value.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import assay.bias.rating.fanout as fanout
import assay.classify.cv as cv
from assay.bias.rating.fanout import rate_passages
from assay.bias.rating.workers import RayRatingWorker
from assay.bias.store import RatingsStore
from assay.classify.config import TrainConfig
from assay.classify.executor import RayExecutor
from assay.data.wdbc import load_dataset
from assay.llm.ensemble import Ensemble
from assay.parallel import init_ray

run_model_unit = cv.run_model_unit


def _note_node(folder: str) -> None:
    import ray

    node = ray.get_runtime_context().get_node_id()
    (Path(folder) / uuid.uuid4().hex).write_text(node)


def _nodes_in(folder: Path) -> list[str]:
    return sorted({p.read_text() for p in folder.iterdir()})


def _run_cv(where: Path) -> dict[str, Any]:
    folder = str(where)

    def unit_noting_its_node(*args: Any) -> Any:
        _note_node(folder)
        return run_model_unit(*args)

    cv.run_model_unit = unit_noting_its_node  # type: ignore[assignment]
    config = TrainConfig(
        folds=3,
        repeats=1,
        inner_folds=2,
        tuning_iter=2,
        k_features=8,
        models=["extra_trees", "logistic_regression"],
        seed=7,
        single_split=False,
    )
    ds = load_dataset()
    X, y = ds.X.to_numpy(dtype=np.float64), ds.y.to_numpy(dtype=np.int64)
    runner = cv.NestedCV(X, y, config, RayExecutor(), progress=False)
    return {
        f"{r.model}|{r.fold_id}": {
            "p_test": [float(p) for p in r.p_test],
            "test_rows": [int(i) for i in r.test_rows],
            "best_params": json.loads(json.dumps(r.best_params, default=str)),
            "candidate_scores": [float(s) for s in r.candidate_scores],
            "selected": [int(i) for i in r.selected],
        }
        for r in runner.run()
    }


def _run_fanout(where: Path, ensemble_json: str, n: int, store: Path) -> dict[str, Any]:
    folder = str(where)

    class WorkerNotingItsNode(RayRatingWorker):
        async def rate(self, task: Any) -> Any:
            _note_node(folder)
            return await super().rate(task)

    fanout.RayRatingWorker = WorkerNotingItsNode  # type: ignore[misc]
    passages = pd.DataFrame(
        {
            "passage_id": [f"p{i:03d}" for i in range(n)],
            "text": [f"Passage {i}: the council debated taxes and schools." for i in range(n)],
            "publisher": [f"pub{i % 3}" for i in range(n)],
        }
    )
    summary = rate_passages(
        passages,
        Ensemble.model_validate_json(ensemble_json),
        RatingsStore(store),
        use_ray=True,
        workers=2,
        progress=False,
        cache="memory://",
    )
    return {"rated": summary.rated, "failed": summary.failed, "calls": summary.provider_calls}


def main(args: dict[str, Any]) -> dict[str, Any]:
    out = Path(args["out"])
    cv_where, fanout_where = out / "cv-nodes", out / "fanout-nodes"
    cv_where.mkdir()
    fanout_where.mkdir()
    started = time.perf_counter()
    ray = init_ray()
    joined = time.perf_counter()
    result: dict[str, Any] = {"cv": _run_cv(cv_where)}
    cv_done = time.perf_counter()
    result["summary"] = _run_fanout(fanout_where, args["ensemble"], args["passages"], out / "st")
    result["seconds"] = {
        "init": joined - started,
        "cv": cv_done - joined,
        "fanout": time.perf_counter() - cv_done,
    }
    result["ratings"] = RatingsStore(out / "st").rows()
    result["alive_nodes"] = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    result["cpus"] = ray.cluster_resources().get("CPU")
    result["address"] = ray.get_runtime_context().gcs_address
    result["cv_nodes"] = _nodes_in(cv_where)
    result["fanout_nodes"] = _nodes_in(fanout_where)
    return result


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1])), default=str))
