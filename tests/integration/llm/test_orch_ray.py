"""Fan-out on real Ray with the real SDKs against the simulated endpoint at 20% injected faults:
the run is killed mid-way (SIGKILL to its whole process group), resumed in a new process, and
then rerun. Checked: every rating stored exactly once (valid, or failed with its reason), the
resume did not repeat finished calls, the server saw no limit violation, the rerun made no call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _orch_support import model_stats, passages, sim_ensemble, sim_model

from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore, is_finished
from assay.obs.metrics_llm import RecordingMetrics
from assay.sim import FaultRates, SimConfig, start_sim_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_PASSAGES = 50
FAULTS = FaultRates(
    server_error=0.06, unavailable=0.03, rate_limit=0.04, timeout=0.02, malformed=0.05
)  # 20% of requests fail one way or another
RUNNER = """
import json, sys
import pandas as pd
from assay.bias.store import RatingsStore, is_finished
from assay.llm.ensemble import Ensemble
from assay.bias.rating.fanout import rate_passages
args = json.loads(sys.argv[1])
summary = rate_passages(
    pd.read_json(args["passages"], orient="records"),
    Ensemble.model_validate_json(args["ensemble"]),
    RatingsStore(args["store"]),
    concurrency=24, workers=2, use_ray=True, progress=False, cache="memory://",
)
print("SUMMARY " + json.dumps({"skipped": summary.skipped, "calls": summary.provider_calls,
                               "rated": summary.rated, "failed": summary.failed}))
"""


def _launch(
    tmp_path: Path, ensemble_json: str, store: Path, ray_env: dict[str, str]
) -> subprocess.Popen[str]:
    """A fan-out run in a new process, joining the session's local Ray (tests/conftest.py)
    through RAY_ADDRESS as a run joins a KubeRay head, rather than starting a Ray of its own."""
    frame_path = tmp_path / "passages.json"
    passages(N_PASSAGES).to_json(frame_path, orient="records")
    args = json.dumps({"passages": str(frame_path), "ensemble": ensemble_json, "store": str(store)})
    env = {**os.environ, **ray_env, "ASSAY_CACHE": "memory://"}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        # its own process group, killed whole; Ray then ends the run's actors, which the
        # driver owns (fate sharing), as a cluster does when a driver dies
        start_new_session=True,
    )


def test_killed_run_resumes_without_duplicates_and_rerun_is_free(
    tmp_path: Path, ray_cluster: dict[str, str]
):
    models = [sim_model(m, faults=FAULTS, rpm=600) for m in ("sim-gpt", "sim-claude", "sim-llama")]
    config = SimConfig(seed=3, timeout_delay_s=3.0, models=models)
    store_dir = tmp_path / "ratings"
    total = N_PASSAGES * 3
    with start_sim_server(config=config, in_subprocess=True) as sim:
        ensemble = sim_ensemble(sim, rpm=600, timeout_s=1.5, backoff_initial_s=0.05)
        first = _launch(tmp_path, ensemble.model_dump_json(), store_dir, ray_cluster)
        deadline = time.monotonic() + 150
        while len(RatingsStore(store_dir).rows()) < total // 3:
            assert first.poll() is None, "the first run ended before it could be killed"
            assert time.monotonic() < deadline, "the first run made no progress"
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        finished_at_kill = RatingsStore(store_dir).finished_keys()
        assert 0 < len(finished_at_kill) < total

        second = _launch(tmp_path, ensemble.model_dump_json(), store_dir, ray_cluster)
        out, _ = second.communicate(timeout=240)
        assert second.returncode == 0, out
        resumed = json.loads(out.split("SUMMARY ", 1)[1])

        before = {m: s["received"] for m, s in model_stats(sim).items()}
        rerun = rate_passages(
            passages(N_PASSAGES),
            ensemble,
            RatingsStore(store_dir),
            use_ray=True,
            progress=False,
            cache="memory://",
            metrics=RecordingMetrics(),
        )
        after = model_stats(sim)

    assert resumed["skipped"] >= len(finished_at_kill)  # nothing finished was sent again
    assert resumed["rated"] + resumed["failed"] == total - resumed["skipped"]
    rows = RatingsStore(store_dir).rows()
    final = {r["key"]: r for r in rows}
    assert len(final) == total  # every rating present
    superseded = [r for r in rows if r is not final[r["key"]]]
    for row in superseded:  # a key is written twice only to retry a transient failure
        assert row["error"] and not is_finished(row), row
    for row in final.values():  # valid, or failed with its reason; never coerced
        assert (row["score"] is not None) != bool(row["error"]), row
        if row["score"] is not None:
            assert -2 <= row["score"] <= 2
    valid = sum(1 for r in final.values() if not r["error"])
    assert valid >= total - 3
    assert rerun.provider_calls == 0 and rerun.skipped == total
    assert {m: s["received"] for m, s in after.items()} == before
    assert all(s["violations"] == 0 for s in after.values()), after
