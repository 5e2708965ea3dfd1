"""Rating one passage: repair retry, failures recorded with reasons, cache, usage; the scorer."""

from __future__ import annotations

import json

import pytest
from _orch_fakes import GOOD, FakeFactory, make_ensemble
from prometheus_client import CollectorRegistry

from assay.bias.prompt import PROMPT_VERSION
from assay.bias.rating.rater import build_runners
from assay.bias.rating.scorer import EnsembleRuntime, score_passage
from assay.llm.cache import MemoryCache, cache_key
from assay.llm.clock import FakeClock
from assay.llm.errors import AuthenticationError, ServerError
from assay.llm.ratelimit import LimiterBank, LocalLimiter
from assay.obs.metrics_llm import PrometheusLLMMetrics, RecordingMetrics

PASSAGE = {"passage_id": "p1", "text": "Some passage.", "publisher": "Pub"}


def runner(factory, cache=None, **resilience):
    ensemble = make_ensemble({"a": ["http://a"]}, **resilience)
    runners = build_runners(
        ensemble,
        LocalLimiter(LimiterBank(FakeClock())),
        metrics=RecordingMetrics(),
        cache=cache,
        clock=FakeClock(),
        provider_factory=factory,
    )
    return runners["a"]


@pytest.mark.asyncio
async def test_valid_rating_row_with_usage_and_cost():
    factory = FakeFactory()
    outcome = await runner(factory).rate(PASSAGE)
    assert outcome.ok
    row = outcome.row
    assert (row["score"], row["biased"], row["confidence"]) == (1.0, 1, 0.8)
    assert row["prompt_version"] == PROMPT_VERSION and row["model"] == "model-a"
    assert row["tokens"] == 120
    assert row["cost"] == pytest.approx((100 * 1.0 + 20 * 2.0) / 1000)
    assert row["key"] == f"p1|a|model-a|{PROMPT_VERSION}"


@pytest.mark.asyncio
async def test_malformed_answer_gets_one_repair_retry():
    factory = FakeFactory()
    factory.get("http://a").script = ["Sure! Here is my rating: positive"]
    outcome = await runner(factory).rate(PASSAGE)
    assert outcome.ok and outcome.calls == 2
    repair = factory.get("http://a").requests[1].prompt
    assert "could not be used" in repair and "Some passage." in repair


@pytest.mark.asyncio
async def test_out_of_range_twice_is_a_failed_row_not_coerced():
    factory = FakeFactory()
    bad = json.dumps({"score": 3, "biased": 1, "confidence": 0.5, "explanation": "x"})
    factory.get("http://a").default = bad
    outcome = await runner(factory).rate(PASSAGE)
    assert not outcome.ok
    assert outcome.row["score"] is None
    assert outcome.row["error"].startswith("parse_error:") and "outside" in outcome.row["error"]
    assert outcome.calls == 2 and outcome.row["tokens"] == 240  # both calls are paid for


@pytest.mark.asyncio
async def test_exhausted_retries_are_a_failed_row_with_reason():
    factory = FakeFactory()
    factory.get("http://a").default = ServerError("HTTP 500")
    outcome = await runner(factory, max_attempts=3).rate(PASSAGE)
    assert outcome.row["error"].startswith("server_error:")
    assert len(factory.get("http://a").requests) == 3 and outcome.retries == 2


@pytest.mark.asyncio
async def test_auth_error_is_raised_not_recorded():
    factory = FakeFactory()
    factory.get("http://a").default = AuthenticationError("bad key")
    with pytest.raises(AuthenticationError):
        await runner(factory).rate(PASSAGE)


@pytest.mark.asyncio
async def test_memory_cache_hit_makes_no_call():
    factory, cache = FakeFactory(), MemoryCache()
    first = await runner(factory, cache=cache).rate(PASSAGE)
    second = await runner(factory, cache=cache).rate({**PASSAGE, "passage_id": "p2"})
    assert factory.calls == 1 and second.cached
    assert second.row["score"] == first.row["score"] and second.row["passage_id"] == "p2"


def test_cache_key_covers_every_part():
    base = dict(
        provider="openai",
        model="m",
        prompt_version="v1",
        system="s",
        prompt="p",
        temperature=0.0,
        max_tokens=10,
    )
    keys = {cache_key(**base)}
    for field, value in [
        ("provider", "x"),
        ("model", "x"),
        ("prompt_version", "v2"),
        ("prompt", "q"),
        ("temperature", 0.5),
        ("max_tokens", 11),
    ]:
        keys.add(cache_key(**{**base, field: value}))
    assert len(keys) == 7


@pytest.mark.asyncio
async def test_score_passage_reports_missing_raters_and_exports_metrics():
    factory = FakeFactory()
    factory.get("http://b").default = ServerError("down")
    registry = CollectorRegistry()
    ensemble = make_ensemble(max_attempts=2)
    async with EnsembleRuntime(
        ensemble,
        metrics=PrometheusLLMMetrics(registry),
        clock=FakeClock(),
        provider_factory=factory,
    ) as runtime:
        result = await score_passage("A text.", runtime)
        again = await score_passage("A text.", runtime)
    assert result.scores == {"a": 1.0}
    assert result.missing["b"].startswith("server_error")
    assert again.scores == {"a": 1.0}  # served by the runtime's cache
    value = registry.get_sample_value
    assert (
        value("llm_calls_total", {"rater": "a", "endpoint": "http://a", "outcome": "success"}) == 1
    )
    assert (
        value("llm_errors_total", {"rater": "b", "endpoint": "http://b", "reason": "server_error"})
        == 4
    )
    assert value("llm_retries_total", {"rater": "b", "endpoint": "http://b"}) == 2
    assert value("llm_cache_hits_total", {"rater": "a"}) == 1
    assert value("llm_tokens_total", {"rater": "a", "direction": "input"}) == 100
    assert value("llm_cost_usd_total", {"rater": "a"}) == pytest.approx(0.14)
    assert value("llm_latency_seconds_count", {"rater": "a", "endpoint": "http://a"}) == 1
    assert value("llm_ratelimit_wait_seconds_count", {"rater": "a", "endpoint": "http://a"}) == 1
    assert factory.get("http://a").closed


@pytest.mark.asyncio
async def test_score_passage_deadline():
    factory = FakeFactory()
    ensemble = make_ensemble({"a": ["http://a"]})
    async with EnsembleRuntime(
        ensemble, provider_factory=factory, metrics=RecordingMetrics()
    ) as runtime:
        import asyncio

        async def slow(request):
            await asyncio.sleep(5)

        factory.get("http://a").complete = slow  # type: ignore[method-assign]
        result = await score_passage("t", runtime, deadline_s=0.05)
    assert result.missing["a"].startswith("timeout")
    assert GOOD


@pytest.mark.asyncio
async def test_score_passage_only_asks_the_chosen_raters():
    factory = FakeFactory()
    async with EnsembleRuntime(
        make_ensemble(), provider_factory=factory, metrics=RecordingMetrics()
    ) as runtime:
        result = await score_passage("t", runtime, raters=["b"])
    assert set(result.ratings) == {"b"} and factory.calls == 1
