"""rate_passages on the in-process path (fake providers, fake clock): nothing lost or
duplicated under faults, reruns make zero calls, the budget stops a run cleanly."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from _orch_fakes import GOOD, FakeFactory, make_ensemble

from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.errors import DataValidationError
from assay.llm.cache import MemoryCache
from assay.llm.clock import FakeClock
from assay.llm.errors import AuthenticationError, ProviderTimeoutError, RateLimitError, ServerError
from assay.obs.metrics_llm import RecordingMetrics


def passages(n: int, prefix: str = "p") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "passage_id": [f"{prefix}{i}" for i in range(n)],
            "text": [f"Passage {prefix} number {i}." for i in range(n)],
            "publisher": [f"pub{i % 3}" for i in range(n)],
        }
    )


def run(frame, ensemble, store, factory, **kwargs):
    kwargs.setdefault("cache", MemoryCache())
    return rate_passages(
        frame,
        ensemble,
        store,
        use_ray=False,
        progress=False,
        provider_factory=factory,
        clock=FakeClock(),
        metrics=RecordingMetrics(),
        **kwargs,
    )


def faulty(factory: FakeFactory, urls: list[str], rate: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    faults = [
        ServerError("500"),
        RateLimitError("429", retry_after_s=1.0),
        ProviderTimeoutError("slow"),
        "not json at all",
    ]

    def maybe_fail(request):
        return rng.choice(faults) if rng.random() < rate else None

    for url in urls:
        factory.get(url).on_call = maybe_fail


def test_twenty_percent_faults_lose_and_duplicate_nothing(tmp_path: Path):
    factory = FakeFactory()
    faulty(factory, ["http://a", "http://b"], 0.2)
    store = RatingsStore(tmp_path)
    summary = run(passages(50), make_ensemble(), store, factory, concurrency=8)
    lines = store.rows()
    keys = [r["key"] for r in lines]
    assert len(keys) == len(set(keys)) == 100
    assert summary.rated + summary.failed == 100
    assert summary.rated >= 98  # 8 attempts and one repair: failures are very unlikely
    for r in lines:
        assert (r["score"] is not None) != bool(r["error"])


def test_rerun_of_finished_study_makes_zero_calls(tmp_path: Path):
    factory = FakeFactory()
    store = RatingsStore(tmp_path)
    run(passages(10), make_ensemble(), store, factory)
    calls = factory.calls
    summary = run(passages(10), make_ensemble(), store, factory)
    assert factory.calls == calls == 20
    assert summary.skipped == 20 and summary.provider_calls == 0
    assert len(store.rows()) == 20


def test_resume_retries_only_transient_failures(tmp_path: Path):
    factory = FakeFactory()
    factory.get("http://b").default = ServerError("down")
    store = RatingsStore(tmp_path)
    first = run(passages(5), make_ensemble(max_attempts=2), store, factory)
    assert first.failed == 5 and set(first.failures) <= {"server_error", "circuit_open"}
    factory.get("http://b").default = GOOD
    second = run(passages(5), make_ensemble(max_attempts=2), store, factory)
    assert second.skipped == 5 and second.rated == 5
    assert store.to_frame()["error"].eq("").all() and len(store) == 10


def test_cache_serves_a_new_store(tmp_path: Path):
    factory, cache = FakeFactory(), MemoryCache()
    run(passages(6), make_ensemble(), RatingsStore(tmp_path / "one"), factory, cache=cache)
    summary = run(
        passages(6), make_ensemble(), RatingsStore(tmp_path / "two"), factory, cache=cache
    )
    assert factory.calls == 12 and summary.cache_hits == 12
    assert len(RatingsStore(tmp_path / "two")) == 12


# Each call reserves its worst case (every input byte a token, the output cap, a repair call),
# about $9 with the fake ensemble's prices; 80 calls cost $11.2 in all. A $20 budget admits a few.
BUDGET_USD = 20.0


def test_budget_stops_before_overspending(tmp_path: Path):
    factory = FakeFactory()
    store = RatingsStore(tmp_path)
    summary = run(
        passages(40), make_ensemble(), store, factory, budget_usd=BUDGET_USD, concurrency=4
    )
    assert summary.stopped_reason == "budget"
    assert 0 < summary.cost_usd <= BUDGET_USD
    assert summary.rated > 0 and summary.not_started > 0
    assert summary.rated + summary.not_started == 80
    assert len(store) == summary.rated


def test_the_budget_counts_what_the_store_already_spent_on_the_study(tmp_path: Path):
    factory = FakeFactory()
    store = RatingsStore(tmp_path / "study")
    runs = [
        run(passages(40), make_ensemble(), store, factory, budget_usd=BUDGET_USD, concurrency=4)
        for _ in range(3)
    ]
    stored = sum(row["cost"] for row in store.rows())
    assert runs[0].stopped_reason == "budget" and 0 < stored <= BUDGET_USD
    assert runs[2].spent_before_usd == pytest.approx(runs[0].cost_usd + runs[1].cost_usd)
    other_study = run(passages(4, "q"), make_ensemble(), store, factory, budget_usd=BUDGET_USD)
    assert other_study.spent_before_usd == 0.0  # its own keys only
    assert other_study.rated == runs[0].rated > 0


def test_a_cache_hit_is_stored_at_no_cost(tmp_path: Path):
    factory, cache = FakeFactory(), MemoryCache()
    run(passages(6), make_ensemble(), RatingsStore(tmp_path / "one"), factory, cache=cache)
    assert sum(r["cost"] for r in RatingsStore(tmp_path / "one").rows()) > 0
    run(passages(6), make_ensemble(), RatingsStore(tmp_path / "two"), factory, cache=cache)
    assert [r["cost"] for r in RatingsStore(tmp_path / "two").rows()] == [0.0] * 12


def test_auth_error_stops_the_run_and_keeps_finished_rows(tmp_path: Path):
    factory = FakeFactory()
    factory.get("http://b").default = AuthenticationError("Incorrect API key")
    store = RatingsStore(tmp_path)
    with pytest.raises(AuthenticationError, match="Incorrect API key"):
        run(passages(20), make_ensemble(), store, factory, concurrency=2)
    assert all(r["rater"] == "a" for r in store.rows())


def test_bad_passages_table(tmp_path: Path):
    frame = passages(3).drop(columns=["publisher"])
    with pytest.raises(DataValidationError, match="publisher"):
        run(frame, make_ensemble(), RatingsStore(tmp_path), FakeFactory())
    dup = pd.concat([passages(2), passages(2)])
    with pytest.raises(DataValidationError, match="more than once"):
        run(dup, make_ensemble(), RatingsStore(tmp_path), FakeFactory())
