"""Anonymous callers of the bias scorer (issue 22): nothing an anonymous caller can break.

Real ``python -m assay_serving.bias_scorer`` / ``assay serve bias-scorer`` processes on
127.0.0.1 and a real simulated endpoint with priced raters (every rating costs USD):

- a scorer started without a caller key file used to serve anyone who reached its port; it now
  refuses to start (exit 2, one sentence naming ``--caller-keys-file`` and
  ``--allow-anonymous``), on both entry points;
- with ``--allow-anonymous`` (local development), the anonymous caller has its own small daily
  budget: a loop of requests gets 429 ``caller_daily_budget`` once it is spent, long before the
  scorer's own budget (code before this change ignored ``ASSAY_SCORER_ANONYMOUS_*`` and spent
  the scorer's whole day).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bias_scorer_support import Scorer, launch, metric_value
from _caller_support import infer, passage, sim_config, worst_of, write_priced_ensemble
from _serving_support import REPO, RunningServer, answers_ready, free_port

pytestmark = pytest.mark.integration

GIVE_UP_S = 600.0
"""Only a scorer that neither exits nor answers takes this long."""
NEEDS_CALLERS = "needs to know its callers"


def without_caller_settings() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("ASSAY_SCORER_CALLER_KEYS_FILE", "ASSAY_SCORER_ALLOW_ANONYMOUS", "ASSAY_ENSEMBLE"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("entry", ["module", "cli"])
def test_scorer_without_caller_keys_refuses_to_start(entry: str, tmp_path: Path) -> None:
    """It exits 2 with the sentence, and never answers ready on its port (code before this
    change started and served; on a loaded machine the start is slow, so this waits for one of
    the two events, not for a time)."""
    http_port = free_port()
    if entry == "cli":
        ports = [f"--http-port={http_port}", f"--grpc-port={free_port()}"]
        command = [str(Path(sys.executable).parent / "assay"), "serve", "bias-scorer", *ports]
    else:
        ports = [f"--http_port={http_port}", f"--grpc_port={free_port()}"]
        command = [sys.executable, "-m", "assay_serving.bias_scorer", *ports]
    log_path = tmp_path / "scorer.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [*command, "--sim"],
            cwd=REPO,
            env=without_caller_settings(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, http_port, 0, log_path)
    try:
        served = answers_ready_before_exit(server)
    finally:
        server.stop()
    output = log_path.read_text()
    assert not served, (
        f"started without caller keys (answered ready or kept running):\n{output[-2000:]}"
    )
    assert process.returncode == 2, output[-2000:]
    said = " ".join(output.split())
    assert NEEDS_CALLERS in said, output[-2000:]
    assert "--caller-keys-file" in said and "--allow-anonymous" in said


def answers_ready_before_exit(server: RunningServer) -> bool:
    """True when ``server`` answers ``/v2/health/ready`` 200 before its process ends."""
    deadline = time.monotonic() + GIVE_UP_S
    while server.process.poll() is None and time.monotonic() < deadline:
        if answers_ready(server):
            return True
        time.sleep(0.2)
    return server.process.poll() is None


def test_anonymous_caller_spends_only_its_own_small_budget(tmp_path: Path) -> None:
    """The scorer's day is 8 worst cases; the anonymous caller's own day 2.5. A loop of
    one-passage requests is served, then refused 429 naming the caller's budget before the
    scorer's day is spent (that would be a 503 for everybody)."""
    from assay.sim import start_sim_server

    with start_sim_server(port=0, config=sim_config(0.0)) as sim:
        ensemble = write_priced_ensemble(tmp_path / "ensemble.yaml", sim.base_url)
        worst = worst_of(ensemble)
        env = {
            "ASSAY_SCORER_ALLOW_ANONYMOUS": "1",
            "ASSAY_SCORER_ANONYMOUS_DAILY_BUDGET_USD": repr(2.5 * worst),
        }
        args = [f"--ensemble={ensemble}", "--rater_deadline_s=30", f"--daily-budget={8 * worst!r}"]
        scorer: Scorer = launch("module", args, tmp_path / "server.log", env).wait_ready()
        try:
            refused, served = None, 0
            while refused is None and served < 200:
                answer = infer(scorer, [passage(f"anon-{served}")], None)
                if answer.status_code != 200:
                    refused = answer
                served += 1
            metrics = scorer.metrics()
        finally:
            scorer.stop()
    assert refused is not None, "the anonymous caller was never refused"
    assert refused.status_code == 429, refused.text  # 503: the scorer's whole day was spent
    assert refused.json()["limit"] == "caller_daily_budget", refused.text
    assert int(refused.headers["retry-after"]) > 0
    spent = metric_value(metrics, "bias_scorer_caller_spend_usd_total", caller="anonymous")
    assert served > 1 and 0 < spent <= 2.5 * worst + 1e-9
