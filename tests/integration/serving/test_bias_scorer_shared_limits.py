"""Two bias-scorer processes sharing one Redis keep ONE set of limits (issue 11, item 2).

Real parts only: a redis-server on 127.0.0.1, ``python -m assay_serving.bias_scorer`` twice (then
restarted), and one simulated LLM endpoint (``assay sim-llm`` in its own process) that records
when each request arrives. The rater's limit is rpm=30 over the providers' 60 s window, so the
load phase lasts a little over a minute: the clock cannot be faked across processes.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from _bias_scorer_support import MODEL, Scorer, launch, metric_value
from _caller_support import spend_record
from _serving_support import free_port

from assay.bias.rating.task import RatingTask
from assay.llm.ensemble import load_ensemble
from assay.llm.usage import worst_case_cost
from assay.sim import SimConfig, SimModelConfig, start_sim_server

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]
RPM = 30
WINDOW_S = 60.0
LOAD_S = 75.0  # longer than one window, so whole 60 s windows are measured
CLIENTS_PER_SCORER = 3
RATER = "sim-gpt"


def passage(tag: str) -> str:
    """Same length for every passage (so one worst case fits all); unique, so no cache hits."""
    return f"Passage {tag:>12}: the council debated taxes, schools and the new bridge."


def write_ensemble(path: Path, sim_url: str) -> Path:
    rater = {
        "provider": "openai",
        "model": RATER,
        "endpoints": [{"base_url": f"{sim_url}/v1"}],
        "rpm": RPM,
        "max_tokens": 200,
        "price_per_1k_input": 0.01,
        "price_per_1k_output": 0.03,
        "timeout_s": 10,
    }
    path.write_text(yaml.safe_dump({"name": "shared", "raters": {RATER: rater}}))
    return path


def start_scorer(name: str, ensemble: Path, tmp: Path, env: dict[str, str], *extra: str) -> Scorer:
    args = ["--ensemble", str(ensemble), "--deadline", "60", "--no-grpc", *extra]
    return launch("module", args, tmp / f"{name}.log", env).wait_ready()


def max_in_any_window(times: list[float], window_s: float) -> int:
    """The most arrivals in any half-open window [t, t + window_s)."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def drive(scorers: list[Scorer], seconds: float) -> dict[str, int]:
    """Single-passage requests from CLIENTS_PER_SCORER threads per scorer, back to back."""
    stop_at = time.monotonic() + seconds
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def client(scorer: Scorer, index: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            response = scorer.infer([passage(f"{scorer.http_port}-{index}-{n}")])
            n += 1
            with lock:
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1

    threads = [
        threading.Thread(target=client, args=(s, i))
        for s in scorers
        for i in range(CLIENTS_PER_SCORER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return statuses


def own_cost(scorer: Scorer) -> float:
    return metric_value(scorer.metrics(), "llm_cost_usd_total", rater=RATER)


def shared_spend(url: str) -> float:
    return spend_record(url, MODEL)


def received(sim: Any) -> int:
    return int(sim.stats()["models"][RATER]["received"])


def test_two_scorers_keep_one_rate_limit_and_one_daily_budget(
    tmp_path: Path, redis_url: str
) -> None:
    env = {"ASSAY_REDIS_URL": redis_url}
    config = SimConfig(models=[SimModelConfig(name=RATER, refusal_rate=0.0)])  # no faults
    with start_sim_server(config=config, in_subprocess=True) as sim:
        ensemble = write_ensemble(tmp_path / "ensemble.yaml", sim.base_url)
        worst = worst_case_cost(
            load_ensemble(str(ensemble), {}).raters[RATER], *_prompt(passage("x"))
        )
        # 1. the rate limit: both scorers flooded for over a minute
        a, b = (start_scorer(n, ensemble, tmp_path, env) for n in ("a", "b"))
        try:
            statuses = drive([a, b], LOAD_S)
            cost_a, cost_b = own_cost(a), own_cost(b)
        finally:
            a.stop()
            b.stop()
        arrivals = sim.stats()["models"][RATER]["arrivals_s"]
        peak = max_in_any_window(arrivals, WINDOW_S)
        spent_1 = shared_spend(redis_url)
        # 2. the budget: restarted scorers with room for ~1.5 worst-case ratings beyond it
        limit = spent_1 + 1.5 * worst
        a2 = start_scorer("a2", ensemble, tmp_path, env, f"--daily-budget={limit!r}")
        b2 = start_scorer("b2", ensemble, tmp_path, env, f"--daily-budget={limit!r}")
        try:
            a2_answers = _until_refused(a2)
            cost_a2 = own_cost(a2)
            before_b2 = received(sim)
            refused_b2 = b2.infer([passage("b2-first")])
            calls_b2 = received(sim) - before_b2
            cost_b2 = own_cost(b2)
        finally:
            a2.stop()
            b2.stop()
        spent_2 = shared_spend(redis_url)

    print(
        f"\nshared limits: rpm={RPM}; {len(arrivals)} requests reached the simulator in "
        f"{LOAD_S:g} s of load from 2 scorers (client statuses {statuses}); max in any rolling "
        f"{WINDOW_S:g} s window = {peak}\n"
        f"spend: scorer a {cost_a:.6f} + scorer b {cost_b:.6f} USD, Redis day total "
        f"{spent_1:.6f}; restarted a2 (budget {limit:.6f}, worst case {worst:.6f}) rated "
        f"{a2_answers} passages for {cost_a2:.6f} USD, then refused; b2 spent {cost_b2:.6f}, "
        f"refused with {calls_b2} calls; Redis day total {spent_2:.6f} USD"
    )
    assert peak <= RPM, f"{peak} requests in one rolling {WINDOW_S:g} s window, limit {RPM}"
    assert peak >= RPM - 4, "the limit did not bind: the load was too light to test it"
    assert cost_a > 0 and cost_b > 0, "both scorers must have rated"
    assert math.isclose(spent_1, cost_a + cost_b, rel_tol=1e-6), "one account for both"
    assert a2_answers >= 1 and cost_a2 < 1.5 * worst, "a2 counted the day's earlier spend"
    assert spent_2 <= limit + 1e-9 and math.isclose(spent_2, spent_1 + cost_a2, rel_tol=1e-6)
    assert refused_b2.status_code == 503 and "budget" in refused_b2.text
    assert calls_b2 == 0 and cost_b2 == 0.0, "b2 spent nothing itself: it saw the others' spend"


def _prompt(text: str) -> tuple[str, str]:
    task = RatingTask(text)
    return task.system, task.prompt


def _until_refused(scorer: Scorer, most: int = 20) -> int:
    """Rate one passage at a time until the scorer refuses for budget; how many it rated."""
    for n in range(most):
        response = scorer.infer([passage(f"a2-{n}")])
        if response.status_code == 503:
            assert "budget" in response.text, response.text
            return n
        assert response.status_code == 200, response.text
    raise AssertionError(f"still rating after {most} passages: the budget is not shared")


def test_an_unreachable_redis_stops_the_scorer_at_start(tmp_path: Path) -> None:
    """Fail closed: no silent per-process limits when the shared Redis does not answer."""
    with start_sim_server() as sim:
        ensemble = write_ensemble(tmp_path / "ensemble.yaml", sim.base_url)
        env = {"ASSAY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens
        scorer = launch("module", ["--ensemble", str(ensemble)], tmp_path / "s.log", env)
        try:
            code = scorer.process.wait(timeout=90)
        finally:
            scorer.stop()
    assert code != 0
    assert "Redis does not answer" in scorer.logs() and "fail closed" in scorer.logs()
