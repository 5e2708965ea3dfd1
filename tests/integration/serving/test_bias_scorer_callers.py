"""Attacks on who may spend the bias scorer's money (issue 22), against real ``python -m
assay_serving.bias_scorer`` processes on 127.0.0.1 rating through real simulated endpoints (priced
raters, so every rating costs USD), over REST and over gRPC (kserve's own protobuf stubs):

- anonymous clients try to spend the day's budget (~31 one-passage requests with no key used
  up $0.02 before; then every caller got 503) -> 401 before any rating, nothing spent;
- unknown and revoked keys -> 401 / 403, over REST and gRPC;
- one caller tries to spend the whole day -> its own daily budget stops it (429 naming the
  limit, Retry-After until midnight UTC) while the other callers are still served;
- one caller sends four concurrent 64-passage requests to fill the queue -> it keeps one
  (its share), the other three get 429 caller_queue (RESOURCE_EXHAUSTED over gRPC), and
  another caller is admitted meanwhile;
- probes and Prometheus need no key; each caller's spend is its own metric series.

The scorer reads the key file from ``ASSAY_SCORER_CALLER_KEYS_FILE`` (code before issue 22
ignored the variable and served everyone: these tests fail there).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _bias_scorer_support import MODEL, Scorer, metric_value, received, text_tensor
from _caller_support import (
    GIVE_UP_S,
    KEYS,
    RATER,
    grpc_infer,
    infer,
    passage,
    sim_config,
    start,
    worst_of,
    write_keys,
    write_priced_ensemble,
)

pytestmark = pytest.mark.integration

SLOW_S = 5.0  # alice's batches are still rating while bob asks


@pytest.fixture(scope="module")
def budget_scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scorer, Any, float]]:
    """Fast sim; the scorer's day: 8 worst cases; alice's own day: 2.5 worst cases."""
    from assay.sim import start_sim_server

    folder = tmp_path_factory.mktemp("scorer-callers-budget")
    with start_sim_server(port=0, config=sim_config(0.0)) as sim:
        worst = worst_of(write_priced_ensemble(folder / "probe.yaml", sim.base_url))
        keys = write_keys(folder / "callers.yaml", alice_budget=2.5 * worst)
        scorer = start(folder, sim.base_url, keys, f"--daily-budget={8 * worst!r}")
        try:
            yield scorer, sim, worst
        finally:
            scorer.stop()


def test_anonymous_requests_cannot_spend_the_day(budget_scorer: tuple[Scorer, Any, float]) -> None:
    """The issue's attack: ~31 one-passage requests without credentials. Each is refused 401
    with a body that says how to authenticate; no rater is called, nothing is spent, and a
    caller with a key is still served."""
    scorer, sim, _ = budget_scorer
    calls_before = received(sim.stats()).get(RATER, 0)
    statuses = [infer(scorer, [passage(f"anon-{n}")], None) for n in range(31)]
    assert {r.status_code for r in statuses} == {401}, [r.text for r in statuses[:3]]
    first = statuses[0]
    assert "Authorization: Bearer" in first.json()["error"]
    assert first.headers["www-authenticate"] == "Bearer"
    assert received(sim.stats()).get(RATER, 0) == calls_before, "a rater was called"
    metrics = scorer.metrics()
    assert metric_value(metrics, "llm_cost_usd_total") == 0.0
    assert metric_value(metrics, "bias_scorer_caller_refused_total", limit="unauthenticated") == 31
    served = infer(scorer, [passage("bob-after-anon")], KEYS["bob"])
    assert served.status_code == 200, served.text


def test_unknown_and_revoked_keys_are_refused_over_rest_and_grpc(
    budget_scorer: tuple[Scorer, Any, float],
) -> None:
    scorer, sim, _ = budget_scorer
    calls_before = received(sim.stats()).get(RATER, 0)
    unknown = infer(scorer, [passage("unknown")], "not-a-key-0123456789abcdefghij")
    assert unknown.status_code == 401 and unknown.json()["error"] == "unknown API key"
    revoked = infer(scorer, [passage("revoked")], KEYS["carol-old"])
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
    wrong_scheme = httpx.post(
        scorer.infer_url,
        json={"inputs": [text_tensor([passage("basic")])]},
        headers={"Authorization": f"Basic {KEYS['bob']}"},
        timeout=GIVE_UP_S,
    )
    assert wrong_scheme.status_code == 401
    assert grpc_infer(scorer, [passage("g-none")], None)[0] == "UNAUTHENTICATED"
    assert grpc_infer(scorer, [passage("g-unknown")], "x" * 30)[0] == "UNAUTHENTICATED"
    code, details = grpc_infer(scorer, [passage("g-revoked")], KEYS["carol-old"])
    assert code == "PERMISSION_DENIED" and "revoked" in details
    assert received(sim.stats()).get(RATER, 0) == calls_before, "a refused request was rated"
    assert grpc_infer(scorer, [passage("g-bob")], KEYS["bob"]) == ("OK", "")
    with_api_key_header = httpx.post(
        scorer.infer_url,
        json={"inputs": [text_tensor([passage("x-api-key")])]},
        headers={"X-API-Key": KEYS["bob"]},
        timeout=GIVE_UP_S,
    )
    assert with_api_key_header.status_code == 200, with_api_key_header.text


def test_probes_and_metrics_need_no_key(budget_scorer: tuple[Scorer, Any, float]) -> None:
    scorer, _, _ = budget_scorer
    for path in ("/v2/health/ready", "/v2/health/live", f"/v2/models/{MODEL}/ready", "/metrics"):
        assert httpx.get(f"{scorer.url}{path}", timeout=10).status_code == 200, path


def test_one_caller_cannot_spend_the_day_for_everybody(
    budget_scorer: tuple[Scorer, Any, float],
) -> None:
    """alice rates one passage at a time until refused: her own budget (2.5 worst cases) stops
    her with 429 caller_daily_budget, well before the scorer's day (8 worst cases) is spent;
    bob is still served after, and each caller's spend is its own metric series."""
    scorer, _, worst = budget_scorer
    refused = None
    for n in range(200):
        response = infer(scorer, [passage(f"alice-{n}")], KEYS["alice"])
        if response.status_code != 200:
            refused = response
            break
    assert refused is not None, "alice was never refused: no per-caller budget"
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["limit"] == "caller_daily_budget" and "midnight UTC" in body["error"]
    assert 0 < int(refused.headers["retry-after"]) <= 24 * 3600 + 1
    assert body["retry_after_s"] == int(refused.headers["retry-after"])
    again = infer(scorer, [passage("alice-again")], KEYS["alice"])
    assert again.status_code == 429
    grpc_code, details = grpc_infer(scorer, [passage("alice-grpc")], KEYS["alice"])
    assert grpc_code == "RESOURCE_EXHAUSTED" and "daily budget" in details
    bob = infer(scorer, [passage("bob-after-alice")], KEYS["bob"])
    assert bob.status_code == 200, bob.text
    metrics = scorer.metrics()
    alice_spent = metric_value(metrics, "bias_scorer_caller_spend_usd_total", caller="alice")
    bob_spent = metric_value(metrics, "bias_scorer_caller_spend_usd_total", caller="bob")
    total = metric_value(metrics, "llm_cost_usd_total", rater=RATER)
    print(f"\nalice rated {n} passages for {alice_spent:.6f} USD (budget {2.5 * worst:.6f})")
    assert 0 < alice_spent <= 2.5 * worst + 1e-9
    assert bob_spent > 0 and abs(alice_spent + bob_spent - total) < 1e-9


@pytest.fixture(scope="module")
def queue_scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scorer, Any]]:
    """A slow sim (5 s a call); 80 passages rated at once; default shares (64 per caller,
    256 in all)."""
    from assay.sim import start_sim_server

    folder = tmp_path_factory.mktemp("scorer-callers-queue")
    with start_sim_server(port=0, config=sim_config(SLOW_S)) as sim:
        keys = write_keys(folder / "callers.yaml")
        scorer = start(folder, sim.base_url, keys, "--max_concurrency=80")
        try:
            yield scorer, sim
        finally:
            scorer.stop()


def test_one_caller_cannot_monopolise_the_queue(queue_scorer: tuple[Scorer, Any]) -> None:
    """The issue's attack: four concurrent 64-passage requests from one caller. One is admitted
    (alice's share is 64 passages), three get 429 caller_queue at once; while alice's batch is
    rated, her gRPC call is RESOURCE_EXHAUSTED and bob's request is admitted and rated."""
    scorer, sim = queue_scorer
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def alice(index: int) -> None:
        texts = [passage(f"q{index}-{row}") for row in range(64)]
        response = infer(scorer, texts, KEYS["alice"])
        with lock:
            answers.append(response)

    # the first gRPC call of a process takes seconds (the library starts): not during the attack
    grpc_infer(scorer, [passage("warm-up")], None)
    before = received(sim.stats()).get(RATER, 0)
    threads = [threading.Thread(target=alice, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + GIVE_UP_S
    while received(sim.stats()).get(RATER, 0) - before < 64:  # a batch of alice's is rating
        assert time.monotonic() < give_up, "alice's batch never reached the raters"
        time.sleep(0.02)
    with contextlib.suppress(AssertionError):  # on a broken scorer they never come back
        wait_for(lambda: len(answers) >= 3, seconds=1.0)
    grpc_code, details = grpc_infer(scorer, [passage("alice-grpc")], KEYS["alice"])
    bob = infer(scorer, [passage("bob-while-alice")], KEYS["bob"])
    for thread in threads:
        thread.join(timeout=GIVE_UP_S)
    assert bob.status_code == 200, bob.text
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 429, 429, 429], statuses
    for refused in (r for r in answers if r.status_code == 429):
        assert refused.json()["limit"] == "caller_queue"
        assert "alice" in refused.json()["error"] and refused.headers["retry-after"] == "5"
    assert grpc_code == "RESOURCE_EXHAUSTED" and "share of the queue" in details
    refusals = metric_value(
        scorer.metrics(), "bias_scorer_caller_refused_total", caller="alice", limit="caller_queue"
    )
    assert refusals == 4


def wait_for(condition: Any, seconds: float) -> None:
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up
        time.sleep(0.02)


def test_a_passage_of_emoji_is_capped_by_its_bytes(queue_scorer: tuple[Scorer, Any]) -> None:
    """The issue's attack: 19,980 emoji in one passage (chars/4 said 5,011 tokens, under the
    cap; byte-level BPEs count up to 79,920). The cap counts UTF-8 bytes: 400 (from the body's
    bytes, before the v2 parse), nothing rated; an English passage of the same length is still
    rated (by the scorer with no budget)."""
    scorer, sim = queue_scorer
    calls_before = received(sim.stats()).get(RATER, 0)
    emoji = infer(scorer, ["😀" * 19_980], KEYS["bob"])
    assert emoji.status_code == 400, emoji.text
    error = emoji.json()["error"]
    assert "a string of 79,920 UTF-8 bytes" in error and "--max-passage-tokens" in error
    assert received(sim.stats()).get(RATER, 0) == calls_before
    english = infer(scorer, [("The council debated taxes. " * 800)[:19_980]], KEYS["bob"])
    assert english.status_code == 200, english.text
