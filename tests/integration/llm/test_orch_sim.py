"""The orchestration layer with the real openai/anthropic/together SDKs against the simulated
endpoint on 127.0.0.1 (in-process path, no Ray): server-measured rate-limit compliance,
Retry-After, failover, caches (memory and a real redis-server), budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from _orch_support import model_stats, passages, sim_ensemble, sim_model
from prometheus_client import CollectorRegistry

from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.llm.cache import MemoryCache, RedisCache
from assay.obs.metrics_llm import PrometheusLLMMetrics, RecordingMetrics
from assay.sim import FaultRates, SimConfig, start_sim_server

pytestmark = pytest.mark.integration
MODELS = ("sim-gpt", "sim-claude", "sim-llama")


def run(frame, ensemble, store, **kwargs):
    kwargs.setdefault("cache", MemoryCache())
    kwargs.setdefault("metrics", RecordingMetrics())
    return rate_passages(frame, ensemble, store, use_ray=False, progress=False, **kwargs)


def test_server_sees_no_more_than_the_limit_in_any_rolling_window(tmp_path: Path):
    """40 requests per rolling 2 s (1,200 rpm) enforced by the server; we send ~60 per model."""
    config = SimConfig(rate_window_s=2.0, models=[sim_model(m, rpm=40) for m in MODELS])
    with start_sim_server(config=config) as sim:
        ensemble = sim_ensemble(sim, rpm=1200, rate_window_s=2.0, burst_s=0.2, safety_margin_s=0.1)
        summary = run(passages(60), ensemble, RatingsStore(tmp_path), concurrency=48)
        stats = model_stats(sim)
    assert summary.rated == 180
    for model in MODELS:
        s = stats[model]
        assert s["violations"] == 0, (model, s)
        assert 30 <= s["peak_window_requests"] <= 40  # close to the limit, never over it
        per_second = [t["requests"] for t in s["timeline"]]
        assert max(per_second) <= 24  # smooth: ~17/s, never a window's worth at once


def test_rate_limit_headers_prevent_violations_even_with_a_wrong_rpm(tmp_path: Path):
    """The client believes it may send 6,000 rpm; the server allows 5 per rolling second and
    says so in x-ratelimit-remaining/-reset headers, which pause the endpoint in time."""
    config = SimConfig(rate_window_s=1.0, models=[sim_model("sim-gpt", rpm=5)])
    with start_sim_server(config=config) as sim:
        ensemble = sim_ensemble(
            sim, rpm=6000, raters=("sim-gpt",), backoff_initial_s=0.01, backoff_max_s=0.02
        )
        summary = run(passages(15), ensemble, RatingsStore(tmp_path), concurrency=1)
        stats = model_stats(sim)["sim-gpt"]
    assert summary.rated == 15 and stats["answered"] == 15
    assert stats["violations"] == 0, stats
    assert summary.elapsed_s >= 2.0  # 15 requests at 5 per rolling second


def test_retry_after_pauses_the_endpoint(tmp_path: Path):
    """A quarter of the answers are 429 with Retry-After 0.4 s; retries back off only 10 ms,
    so the time the run takes shows that every Retry-After was waited out."""
    faults = FaultRates(rate_limit=0.25)
    config = SimConfig(models=[sim_model("sim-gpt", faults=faults, retry_after_s=0.4)])
    with start_sim_server(config=config) as sim:
        ensemble = sim_ensemble(
            sim, rpm=6000, raters=("sim-gpt",), backoff_initial_s=0.01, backoff_max_s=0.01
        )
        summary = run(passages(24), ensemble, RatingsStore(tmp_path), concurrency=1)
        stats = model_stats(sim)["sim-gpt"]
    n429 = stats["statuses"].get("429", 0)
    assert summary.rated == 24 and n429 >= 3
    assert summary.elapsed_s >= 0.4 * n429


def test_failover_to_the_second_endpoint_when_the_first_breaker_opens(tmp_path: Path):
    broken = SimConfig(models=[sim_model("sim-gpt", faults=FaultRates(unavailable=1.0))])
    with start_sim_server(config=broken) as bad, start_sim_server() as good:
        urls = {"sim-gpt": [bad.base_url_for("openai"), good.base_url_for("openai")]}
        ensemble = sim_ensemble(
            urls,
            raters=("sim-gpt",),
            breaker_failures=3,
            breaker_cooldown_s=600,
            backoff_initial_s=0.01,
        )
        registry = CollectorRegistry()
        summary = run(
            passages(20),
            ensemble,
            RatingsStore(tmp_path),
            concurrency=1,
            metrics=PrometheusLLMMetrics(registry),
        )
        bad_seen = model_stats(bad)["sim-gpt"]["received"]
        good_seen = model_stats(good)["sim-gpt"]["answered"]
    assert summary.rated == 20 and good_seen == 20
    assert bad_seen == 3  # the breaker opened after 3 consecutive 503s; nothing more was sent
    state = registry.get_sample_value(
        "llm_breaker_state", {"rater": "sim-gpt", "endpoint": urls["sim-gpt"][0]}
    )
    assert state == 2


def test_memory_cache_makes_the_second_study_free(tmp_path: Path):
    cache = MemoryCache()
    with start_sim_server() as sim:
        ensemble = sim_ensemble(sim, rpm=3000)
        run(passages(10), ensemble, RatingsStore(tmp_path / "a"), cache=cache)
        before = {m: s["received"] for m, s in model_stats(sim).items()}
        second = run(passages(10), ensemble, RatingsStore(tmp_path / "b"), cache=cache)
        after = {m: s["received"] for m, s in model_stats(sim).items()}
    assert before == after and second.cache_hits == 30 and second.provider_calls == 0
    assert len(RatingsStore(tmp_path / "b")) == 30


@pytest.mark.redis
def test_redis_cache_is_shared_between_runs_and_has_a_ttl(tmp_path: Path, redis_url: str):
    url = redis_url
    with start_sim_server() as sim:
        ensemble = sim_ensemble(sim, rpm=3000)
        run(passages(8), ensemble, RatingsStore(tmp_path / "a"), cache=url)
        before = sum(s["received"] for s in model_stats(sim).values())
        second = run(passages(8), ensemble, RatingsStore(tmp_path / "b"), cache=url)
        after = sum(s["received"] for s in model_stats(sim).values())
        import redis

        client = redis.Redis.from_url(url)
        keys = client.keys("assay:llm:*")
        ttl = client.ttl(keys[0])
        client.close()
    assert before == after == 24 and second.cache_hits == 24
    assert len(keys) == 24 and 0 < ttl <= RedisCache(url).ttl_s


def test_budget_stops_cleanly_before_overspending(tmp_path: Path):
    with start_sim_server() as sim:
        ensemble = sim_ensemble(sim, rpm=3000)
        store = RatingsStore(tmp_path)
        summary = run(passages(40), ensemble, store, budget_usd=0.15, concurrency=4)
        answered = sum(s["answered"] for s in model_stats(sim).values())
    assert summary.stopped_reason == "budget"
    assert 0 < summary.cost_usd <= 0.15
    assert summary.rated == len(store) == answered - (summary.provider_calls - summary.rated)
    assert summary.rated + summary.not_started == 120
