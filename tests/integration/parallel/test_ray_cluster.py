"""CV and LLM fan-out on a real two-node Ray cluster, joined through RAY_ADDRESS.

The cluster is started with the `ray` CLI (`ray start --head`, then `ray start --address` for a
second node with its own ports and temp folder; _ray_cluster_support.py), 1 CPU per node. A
driver process with RAY_ADDRESS set runs (a) a small nested CV through NestedCV + RayExecutor
(2 models x 3 folds x 1 repeat, 2 candidates) and (b) a fan-out of 12 passages x 3 raters
through rate_passages on Ray against the simulated endpoint on 127.0.0.1. The same driver
without RAY_ADDRESS (a local Ray, as on a laptop) gives the reference. Checked: identical
out-of-fold predictions, tuned parameters, selected features and ratings; two alive nodes; work
of both kinds landed on both nodes. The cluster is stopped (its process group) in teardown.

Nothing is mocked. To see where work ran, the driver wraps the CV unit function and subclasses
the rating worker so each records ``ray.get_runtime_context().get_node_id()`` into a file; the
wrapped code is the project's own and its results are returned unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _ray_cluster_support import loopback_cluster

from assay.llm.ensemble import Ensemble
from assay.sim import SimConfig, SimModelConfig, start_sim_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KINDS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}
N_PASSAGES = 12
DRIVER = Path(__file__).with_name("_ray_driver.py")
RATING_FIELDS = ("passage_id", "rater", "score", "biased", "error", "model", "prompt_version")


def _ensemble(sim: Any) -> Ensemble:
    return Ensemble.model_validate(
        {
            "name": "ray-cluster-test",
            "raters": {
                model: {
                    "provider": kind,
                    "model": model,
                    "endpoints": [{"base_url": sim.base_url_for(kind)}],
                    "rpm": 6000,
                    "max_tokens": 200,
                    "timeout_s": 30.0,
                }
                for model, kind in KINDS.items()
            },
        }
    )


def _launch(out: Path, ensemble: Ensemble, extra_env: dict[str, str]) -> subprocess.Popen[str]:
    """One driver run (CV, then fan-out) in a fresh process."""
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra_env, ASSAY_CACHE="memory://")
    args = {"out": str(out), "ensemble": ensemble.model_dump_json(), "passages": N_PASSAGES}
    return subprocess.Popen(
        [sys.executable, str(DRIVER), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _result(driver: subprocess.Popen[str]) -> dict[str, Any]:
    """What the driver printed (its last line, JSON); fails with its output if it failed."""
    try:
        stdout, stderr = driver.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        driver.kill()
        stdout, stderr = driver.communicate()
    assert driver.returncode == 0, f"driver failed:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def _ratings(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{r['passage_id']}|{r['rater']}": {k: r.get(k) for k in RATING_FIELDS}
        for r in result["ratings"]
    }


def test_cv_and_fanout_on_a_two_node_cluster_match_a_local_run(tmp_path: Path) -> None:
    models = [SimModelConfig(name=m, latency_s=0.01, latency_jitter_s=0.0) for m in KINDS]
    with start_sim_server(config=SimConfig(seed=5, models=models), in_subprocess=True) as sim:
        ensemble = _ensemble(sim)
        # one after the other: a node starting beside a busy local Ray can miss its 30 s
        local = _result(_launch(tmp_path / "local", ensemble, {}))
        started = time.perf_counter()
        with loopback_cluster(cpus_per_node=1) as cluster:
            up = time.perf_counter() - started
            remote = _result(_launch(tmp_path / "cluster", ensemble, cluster.join_env()))
    print(f"cluster start {up:.1f} s; driver phases: local {local['seconds']}, {remote['seconds']}")

    assert remote["address"].endswith(cluster.address.rsplit(":", 1)[1])
    alive = remote["alive_nodes"]
    assert len(alive) == 2, f"expected the head and one worker node, saw {alive}"
    assert remote["cpus"] == 2.0
    # work of both kinds landed on both nodes (each records the node it ran on)
    assert set(remote["cv_nodes"]) == set(alive), remote["cv_nodes"]
    assert set(remote["fanout_nodes"]) == set(alive), remote["fanout_nodes"]
    assert len(set(local["cv_nodes"])) == 1  # the local reference is one node

    # (a) the CV: same units, bit-identical predictions, same tuning and feature selection
    assert len(local["cv"]) == 2 * 3
    assert remote["cv"] == local["cv"]
    # (b) the fan-out: every rating made once, the same on the cluster as locally
    assert remote["summary"]["rated"] == local["summary"]["rated"] == N_PASSAGES * 3
    assert remote["summary"]["failed"] == 0
    assert _ratings(remote) == _ratings(local)
