"""Deterministic simulation: with injected faults on, the stored ratings do not depend on
concurrency.

The default synthetic corpus of ``assay bias-study`` (600 passages, 60 textbooks, seed 42) is
rated by the bundled simulated ensemble (``sim-gpt`` via openai, ``sim-claude`` via anthropic,
``sim-llama`` via together; real SDKs, real simulated endpoint on 127.0.0.1) through the study's
fan-out entry point ``rate_passages``, once at concurrency 4 and once at concurrency 32, with a few
per cent of every injected fault (429, 500, 503, timeout, malformed answer, broken body). Every
stored column except ``latency`` - the one column excluded, because it is a wall-clock
measurement - must be identical row for row, and so must the agreement report built from them.

Why it holds: the simulator draws every fault, jitter and malformed variant from (seed, model,
passage, attempt number) and a client's retries of one (rater, passage) are sequential, so each
passage sees the same sequence of answers whatever else is in flight (``assay.sim.app``); and a
wait behind an open circuit breaker - whose state does depend on arrival order - does not use up
one of the call's attempts (``assay.llm.retry``).

The fan-out runs in-process (``use_ray=False``): the same ``rate_passages`` path with one worker,
about 33 s for both runs on 2 shared cores, where local Ray adds its start-up and per-call actor
hops (about 70-95 s here; the same comparison against Ray with 2 workers at concurrency 32 gave
identical ratings too). ``NullMetrics`` because on the in-process path a ``RecordingMetrics`` is
replayed into itself and grows quadratically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _orch_support import model_stats
from starlette.testclient import TestClient

from assay.bias.agreement import agreement_report
from assay.bias.prompt import build_messages, repair_prompt
from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.llm.ensemble import Ensemble, load_ensemble
from assay.obs.metrics_llm import NullMetrics
from assay.sim import (
    FaultRates,
    SimConfig,
    SimModelConfig,
    start_sim_server,
    text_key,
    truth_table_from_pairs,
)
from assay.sim.app import SimEndpoint
from assay.sim.config import default_models
from assay.sim.server import SimServer

pytestmark = pytest.mark.integration

FAULTS = FaultRates(
    rate_limit=0.03,
    server_error=0.03,
    unavailable=0.03,
    malformed=0.03,
    bad_body=0.03,
    timeout=0.01,
)
FAULT_KINDS = tuple(FaultRates.model_fields)
RATER_TIMEOUT_S = 2.0  # a "timeout" fault stalls 4 s on the server: the client gives up at 2 s
# (0.5 s let a normal answer delayed by a loaded machine time out too: one extra request)
CONCURRENCIES = (4, 32)


def _sim_config(corpus: pd.DataFrame) -> SimConfig:
    """The study's simulator (default models, corpus truth) with fast answers and faults on."""
    models = [
        m.model_copy(
            update={
                "faults": FAULTS,
                "latency_s": 0.002,
                "latency_jitter_s": 0.002,
                "retry_after_s": 0.02,
            }
        )
        for m in default_models()
    ]
    truth = truth_table_from_pairs(zip(corpus["text"], corpus["true_score"], strict=True))
    return SimConfig(seed=42, models=models, timeout_delay_s=4.0, truth=truth)


def _bundled_ensemble(sim: SimServer) -> Ensemble:
    """The bundled ``sim`` ensemble pointed at ``sim``, with a high rpm (the client limiter never
    waits), a short timeout and short backoffs / cool-down (via its documented overrides)."""
    env = {"ASSAY_SIM_URL": sim.base_url}
    for rater in ("SIM_GPT", "SIM_CLAUDE", "SIM_LLAMA"):
        env[f"ASSAY_RATER_{rater}_RPM"] = "60000"
        env[f"ASSAY_RATER_{rater}_TIMEOUT_S"] = str(RATER_TIMEOUT_S)
    ensemble = load_ensemble(None, environ=env)
    resilience = ensemble.resilience.model_copy(
        update={"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "breaker_cooldown_s": 0.5}
    )
    return ensemble.model_copy(update={"resilience": resilience})


def _rate(
    corpus: pd.DataFrame, ensemble: Ensemble, store_dir: Path, concurrency: int
) -> pd.DataFrame:
    with RatingsStore(store_dir) as store:
        summary = rate_passages(
            corpus,
            ensemble,
            store,
            concurrency=concurrency,
            use_ray=False,
            progress=False,
            cache="memory://",
            metrics=NullMetrics(),
        )
        frame = store.to_frame(with_key=True)
    assert summary.rated + summary.failed == len(corpus) * 3, summary
    assert summary.retries > 0
    return frame.sort_values("key").reset_index(drop=True)


@pytest.mark.slow
def test_ratings_and_agreement_do_not_depend_on_concurrency(tmp_path: Path) -> None:
    corpus = generate_corpus(SyntheticSpec(n_passages=600, n_textbooks=60, seed=42))
    ratings: dict[int, pd.DataFrame] = {}
    stats: dict[int, dict[str, Any]] = {}
    with start_sim_server(config=_sim_config(corpus), in_subprocess=True) as sim:
        ensemble = _bundled_ensemble(sim)
        for concurrency in CONCURRENCIES:
            sim.reset_stats()  # also restarts every (model, passage) attempt count
            ratings[concurrency] = _rate(
                corpus, ensemble, tmp_path / f"c{concurrency}", concurrency
            )
            stats[concurrency] = model_stats(sim)

    for concurrency, per_model in stats.items():  # the faults really happened, every kind
        injected = {k: sum(s["faults"].get(k, 0) for s in per_model.values()) for k in FAULT_KINDS}
        assert all(n > 0 for n in injected.values()), (concurrency, injected)
        assert all(s["violations"] == 0 for s in per_model.values()), per_model
    low, high = (stats[c] for c in CONCURRENCIES)
    for model in low:  # the same requests reached the simulator with the same faults
        assert low[model]["faults"] == high[model]["faults"], model
        assert low[model]["admitted"] == high[model]["admitted"], model

    first, second = (ratings[c] for c in CONCURRENCIES)
    assert len(first) == len(corpus) * 3
    assert (first["error"] != "").any() and (first["error"] == "").sum() > len(first) * 0.95
    compared = [c for c in first.columns if c != "latency"]
    pd.testing.assert_frame_equal(first[compared], second[compared])

    reports = [
        agreement_report(r, "interval", passages=corpus, n_boot=200, seed=0)
        for r in (first, second)
    ]
    assert reports[0]["alpha"] is not None
    assert json.dumps(reports[0], sort_keys=True) == json.dumps(reports[1], sort_keys=True)


# --- the simulator on its own: same (seed, model, passage, attempt), same answer -----------------

PASSAGE = "The council approved the budget after a long debate about school funding."
OTHERS = [f"Passage {i}: the mayor spoke about roads and taxes." for i in range(12)]


def _noisy_config() -> SimConfig:
    faults = FaultRates(
        rate_limit=0.1, server_error=0.1, unavailable=0.1, malformed=0.3, bad_body=0.1
    )
    model = SimModelConfig(
        name="sim-gpt", latency_s=0.0, latency_jitter_s=0.0, faults=faults, rpm=1
    )
    return SimConfig(seed=5, models=[model])


def _ask(client: TestClient, passage: str, *, repair: bool = False) -> tuple[int, str]:
    """(status, what came back: answer text, error message or raw body) for one request."""
    system, user = build_messages(passage)
    if repair:
        user = repair_prompt(passage, "not json", "the answer is empty")
    body = {
        "model": "sim-gpt",
        "max_tokens": 200,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    reply = client.post("/v1/chat/completions", json=body)
    try:
        data = reply.json()
    except ValueError:
        return reply.status_code, reply.text
    if reply.status_code == 200:
        return 200, data["choices"][0]["message"]["content"]
    return reply.status_code, data["error"]["message"]


def test_same_seed_model_passage_and_attempt_give_the_same_answer() -> None:
    """Two fresh endpoints agree request for request, even when the second sees other passages in
    between, a repair prompt in place of every other plain one, and requests its rpm window
    rejects (not counted as attempts); different attempts can answer differently; ``/sim/reset``
    restarts the attempts."""
    now = [0.0]

    def clock() -> float:
        return now[0]

    def tick() -> None:  # rpm=1 per 60 s window: one admission per step
        now[0] += 61

    first, second, third = (SimEndpoint(_noisy_config(), clock) for _ in range(3))
    with TestClient(first.app()) as a, TestClient(second.app()) as b, TestClient(third.app()) as c:
        plain = []
        for _ in OTHERS:
            tick()
            plain.append(_ask(a, PASSAGE))
        shuffled = []
        for i, other in enumerate(OTHERS):
            tick()
            _ask(b, other)  # another passage's attempt
            status, message = _ask(b, PASSAGE, repair=i % 2 == 1)
            assert status == 429 and message.startswith("Rate limit of 1 requests"), message
            tick()
            shuffled.append(_ask(b, PASSAGE, repair=i % 2 == 1))
        assert shuffled == plain
        assert len(set(plain)) > 1  # a different attempt can give a different outcome
        assert 200 in {status for status, _ in plain}
        assert a.post("/sim/reset").status_code == 200
        tick()
        assert _ask(a, PASSAGE) == plain[0]
        tick()
        assert _ask(c, PASSAGE) == plain[0]
    assert first.state.attempts[("sim-gpt", text_key(PASSAGE))] == 1
    draws = [first.request_rng("sim-gpt", PASSAGE, n).random() for n in range(4)]
    assert draws == [second.request_rng("sim-gpt", PASSAGE, n).random() for n in range(4)]
    assert len(set(draws)) == 4
