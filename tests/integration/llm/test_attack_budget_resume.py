"""Attack: resume a budget-limited bias study again and again. ``--budget`` is the study's
budget, not each run's: what the ratings store already spent on the study's keys counts, so
three resumed runs with a $0.05 budget store at most $0.05 of ratings (each used to start from
zero: $0.07 and more). The rate step (what ``assay bias-study --budget`` runs) with the bundled
simulated raters, through their real SDKs, against the simulated endpoint on 127.0.0.1."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from assay.bias.steps import load_step, rate_step
from assay.bias.store import RatingsStore
from assay.sim import start_sim_server

pytestmark = pytest.mark.integration
BUDGET = 0.05


def test_three_resumed_runs_store_no_more_than_the_budget(tmp_path: Path) -> None:
    load_dir, store_dir = tmp_path / "load", tmp_path / "store"
    load_step(load_dir, kind="synthetic", synthetic_passages=60, synthetic_textbooks=6, seed=3)
    with start_sim_server() as sim:
        runs = [
            rate_step(
                load_dir,
                tmp_path / f"run-{n}",
                store_dir=str(store_dir),
                sim_url=sim.base_url,
                budget_usd=BUDGET,
                concurrency=8,
                use_ray=False,
            )
            for n in range(3)
        ]
    rows = RatingsStore(store_dir).rows()
    stored = math.fsum(row["cost"] or 0.0 for row in rows)
    assert runs[0]["stopped_reason"] == "budget" and len(rows) < 180  # the budget bit
    assert stored <= BUDGET + 1e-9, [run["cost_usd"] for run in runs]
    assert math.fsum(run["cost_usd"] for run in runs) == pytest.approx(stored)
    assert runs[2]["spent_before_usd"] == pytest.approx(runs[0]["cost_usd"] + runs[1]["cost_usd"])
