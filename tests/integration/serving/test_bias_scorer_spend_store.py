"""The bias scorer's spend record and caller quotas in a shared Redis (issue 22), with real parts
only: redis-server processes on 127.0.0.1 started with the manifests' persistence (append-only
file, fsync always) in tmp_path, ``python -m assay_serving.bias_scorer`` replicas, and simulated
endpoints with priced raters:

- Redis crashes (SIGKILL) and restarts: the day's spend is still counted (a caller refused for
  its budget before the crash is still refused after it);
- two replicas share each caller's budget and queue share;
- Redis freezes (SIGSTOP): a request does not wait past its deadline - a clear 503 on time,
  nothing rated - and the scorer serves again once Redis answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _bias_scorer_support import MODEL, Scorer, received
from _caller_support import (
    KEYS,
    RATER,
    infer,
    passage,
    sim_config,
    spend_record,
    start,
    worst_of,
    write_keys,
    write_priced_ensemble,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis]
DEADLINE_S = 3.0


@pytest.fixture
def fast_sim() -> Iterator[Any]:
    from assay.sim import start_sim_server

    with start_sim_server(port=0, config=sim_config(0.0)) as sim:
        yield sim


def until_refused(scorer: Scorer, key: str, tag: str, most: int = 200) -> httpx.Response:
    for n in range(most):
        response = infer(scorer, [passage(f"{tag}-{n}")], key)
        if response.status_code != 200:
            return response
    raise AssertionError(f"{tag}: still served after {most} passages")


def test_the_days_spend_survives_a_redis_crash_and_is_shared_by_replicas(
    tmp_path: Path, durable_redis: Any, fast_sim: Any
) -> None:
    worst = worst_of(write_priced_ensemble(tmp_path / "probe.yaml", fast_sim.base_url))
    keys = write_keys(tmp_path / "callers.yaml", alice_budget=2.5 * worst)
    shared = [f"--redis-url={durable_redis.url}", f"--daily-budget={20 * worst!r}", "--no-grpc"]
    a = start(tmp_path / "a", fast_sim.base_url, keys, *shared)
    b = start(tmp_path / "b", fast_sim.base_url, keys, *shared)
    try:
        refused = until_refused(a, KEYS["alice"], "alice-a")
        on_b = infer(b, [passage("alice-b")], KEYS["alice"])
        alice_before = spend_record(durable_redis.url, f"{MODEL}:caller:alice")
        day_before = spend_record(durable_redis.url, MODEL)

        durable_redis.crash_and_restart()

        alice_after = spend_record(durable_redis.url, f"{MODEL}:caller:alice")
        day_after = spend_record(durable_redis.url, MODEL)
        answers_after = [
            infer(s, [passage(f"alice-after-{s.http_port}")], KEYS["alice"]) for s in (a, b)
        ]
        bob_after = [infer(s, [passage(f"bob-after-{s.http_port}")], KEYS["bob"]) for s in (a, b)]
    finally:
        a.stop()
        b.stop()
    print(
        f"\nalice's day {alice_before:.6f} USD before the crash, {alice_after:.6f} after; "
        f"the scorer's day {day_before:.6f} -> {day_after:.6f} (alice's budget {2.5 * worst:.6f})"
    )
    assert refused.status_code == 429 and refused.json()["limit"] == "caller_daily_budget"
    assert on_b.status_code == 429, "replica b did not see alice's spend on replica a"
    assert alice_before > 0 and alice_after == pytest.approx(alice_before, rel=1e-9)
    assert day_after == pytest.approx(day_before, rel=1e-9)
    assert [r.status_code for r in answers_after] == [429, 429], [r.text for r in answers_after]
    assert [r.status_code for r in bob_after] == [200, 200], [r.text for r in bob_after]


def test_two_replicas_share_each_callers_queue(tmp_path: Path, durable_redis: Any) -> None:
    """alice's 64-passage batch rates on replica a (slow sim); her next request on replica b is
    429 caller_queue; bob on b is served."""
    from assay.sim import start_sim_server

    with start_sim_server(port=0, config=sim_config(4.0)) as sim:
        keys = write_keys(tmp_path / "callers.yaml")
        shared = [f"--redis-url={durable_redis.url}", "--max_concurrency=80", "--no-grpc"]
        a = start(tmp_path / "a", sim.base_url, keys, *shared)
        b = start(tmp_path / "b", sim.base_url, keys, *shared)
        try:
            batch: list[httpx.Response] = []
            thread = threading.Thread(
                target=lambda: batch.append(
                    infer(a, [passage(f"a-{row}") for row in range(64)], KEYS["alice"])
                )
            )
            thread.start()
            give_up = time.monotonic() + 60
            while received(sim.stats()).get(RATER, 0) < 64:
                assert time.monotonic() < give_up, "alice's batch never reached the raters"
                time.sleep(0.02)
            alice_b = infer(b, [passage("alice-b")], KEYS["alice"])
            bob_b = infer(b, [passage("bob-b")], KEYS["bob"])
            thread.join(timeout=60)
            alice_again = infer(b, [passage("alice-b-after")], KEYS["alice"])
        finally:
            a.stop()
            b.stop()
    assert [r.status_code for r in batch] == [200]
    assert alice_b.status_code == 429 and alice_b.json()["limit"] == "caller_queue"
    assert bob_b.status_code == 200, bob_b.text
    assert alice_again.status_code == 200, "alice's hold was not released"


def test_a_frozen_redis_cannot_hold_a_request_past_its_deadline(
    tmp_path: Path, durable_redis: Any, fast_sim: Any
) -> None:
    keys = write_keys(tmp_path / "callers.yaml")
    args = [f"--redis-url={durable_redis.url}", f"--request-deadline={DEADLINE_S}", "--no-grpc"]
    scorer = start(tmp_path / "s", fast_sim.base_url, keys, *args)
    try:
        assert infer(scorer, [passage("before")], KEYS["bob"]).status_code == 200
        calls = received(fast_sim.stats()).get(RATER, 0)
        durable_redis.freeze()
        started = time.monotonic()
        try:
            frozen = httpx.post(
                scorer.infer_url,
                json={
                    "inputs": [
                        {
                            "name": "text",
                            "shape": [1],
                            "datatype": "BYTES",
                            "data": [passage("frozen")],
                        }
                    ]
                },
                headers={"Authorization": f"Bearer {KEYS['bob']}"},
                timeout=DEADLINE_S + 15,
            )
            took = time.monotonic() - started
            calls_frozen = received(fast_sim.stats()).get(RATER, 0) - calls
            ready = httpx.get(f"{scorer.url}/v2/health/live", timeout=5).status_code
        finally:
            durable_redis.thaw()
        after = infer(scorer, [passage("after")], KEYS["bob"])
    finally:
        scorer.stop()
    print(f"\nfrozen Redis: {frozen.status_code} after {took:.2f} s (deadline {DEADLINE_S:g} s)")
    assert took < DEADLINE_S + 1.5, f"held {took:.2f} s, the deadline is {DEADLINE_S:g} s"
    assert frozen.status_code == 503, frozen.text
    assert "Redis" in frozen.json()["error"] and "deadline" in frozen.json()["error"]
    assert calls_frozen == 0, "rated without a spend record"
    assert ready == 200
    assert after.status_code == 200, after.text
