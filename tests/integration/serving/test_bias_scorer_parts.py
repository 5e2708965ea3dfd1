"""The bias scorer's KServe-free parts in-process: aggregation, API keys, budget and breakers.

No server and no network: the budget test rates through the layer's ``EnsembleRuntime`` with a
stand-in provider (its ``provider_factory`` seam) that answers like an LLM, because real calls
cost money. (KServe itself is not imported here: its protobuf module clashes with tritonclient's
in one process, and other serving tests use tritonclient.grpc.)
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from assay.bias.rating.availability import unavailable_raters, usable_ensemble
from assay.bias.rating.scorer import EnsembleRuntime, PassageScore, score_passage
from assay.bias.rating.task import RatingTask
from assay.llm.ensemble import load_ensemble
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.llm.usage import Budget, worst_case_cost
from assay.obs.metrics_llm import NullMetrics
from assay.serving.bias_ensemble import aggregate

RATERS = ("a", "b", "c")


def rating(score: float, biased: int, confidence: float = 0.8) -> dict[str, Any]:
    return {
        "score": score,
        "biased": biased,
        "confidence": confidence,
        "explanation": f"score {score}",
    }


def test_aggregate_summarises_the_raters_that_answered() -> None:
    rated = [
        PassageScore(
            ratings={"a": rating(1.0, 1, 0.9), "b": rating(0.0, 0, 0.7), "c": rating(2.0, 1)}
        ),
        PassageScore(ratings={"b": rating(-1.0, 1)}, missing={"a": "timeout", "c": "server_error"}),
        PassageScore(ratings={"a": rating(0.5, 1), "c": rating(-0.5, 0)}, missing={"b": "x"}),
        PassageScore(missing={"a": "x", "b": "x", "c": "x"}),
    ]
    out = aggregate(rated, RATERS)
    np.testing.assert_allclose(out["bias_score"][:3], [1.0, -1.0, 0.0])
    assert math.isclose(out["score_std"][0], 1.0, abs_tol=1e-6)  # sample std of 1, 0, 2
    assert np.isnan(out["score_std"][1])  # one rating: no disagreement to measure
    np.testing.assert_allclose(out["confidence"][0], 0.8, atol=1e-6)
    assert out["biased"].tolist() == [1, 1, 1, -1]  # 2/3, 1/1, a tie (1/2) counts, nobody
    assert out["n_ratings"].tolist() == [3, 1, 2, 0]
    assert out["missing_raters"].tolist() == ["", "a,c", "b", "a,b,c"]
    assert out["explanation"][0] == "a: score 1.0"  # the rating closest to the mean
    assert out["explanation"][3] == ""
    assert np.isnan(out["score_a"][1]) and out["score_b"][1] == -1.0
    assert np.isnan(out["bias_score"][3])


def ensemble_file(path: Path, price: float = 0.0) -> Path:
    endpoint = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "KEY_A"}
    raters = {
        "a": {"provider": "openai", "model": "m-a", "endpoints": [endpoint]},
        "b": {
            "provider": "openai",
            "model": "m-b",
            "endpoints": [
                {**endpoint, "api_key_env": "KEY_B1"},
                {**endpoint, "api_key_env": "KEY_B2"},
            ],
            "price_per_1k_input": price,
            "price_per_1k_output": price,
        },
    }
    path.write_text(yaml.safe_dump({"name": "t", "raters": raters}))
    return path


def test_raters_without_api_keys_are_reported_not_configured(tmp_path: Path) -> None:
    ensemble = load_ensemble(ensemble_file(tmp_path / "e.yaml"), environ={})
    usable, dropped = usable_ensemble(ensemble, {"KEY_B2": "secret"})
    assert list(usable.raters) == ["b"]
    assert [ep.api_key_env for ep in usable.raters["b"].endpoints] == ["KEY_B2"]
    assert dropped == {"a": "not_configured: API key variable KEY_A is not set"}
    assert usable_ensemble(ensemble, {})[0] is None


def test_daily_spend_starts_again_each_utc_day() -> None:
    days = iter([date(2026, 1, 1)] * 4 + [date(2026, 1, 2)] * 3)
    spend = Budget(None, today=lambda: next(days))
    spend.settle(0.0, 0.5)
    spend.settle(0.0, 0.25)
    assert spend.spent_today() == 0.75
    assert spend.spent_today() == 0.0  # the next day
    spend.settle(0.0, 0.1)
    assert math.isclose(spend.spent_usd, 0.1)


class AnsweringProvider:
    """Stands in for an LLM SDK adapter: a valid rating with 1,000 input + 1,000 output tokens."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.calls += 1
        answer = {"score": 1.0, "biased": 1, "confidence": 0.9, "explanation": "leans right"}
        return CompletionResponse(json.dumps(answer), request.model, 1000, 1000, 0.01)

    async def aclose(self) -> None:
        return None


def test_the_daily_budget_and_open_breakers_stop_calls(tmp_path: Path) -> None:
    provider = AnsweringProvider()
    ensemble = load_ensemble(ensemble_file(tmp_path / "e.yaml", price=0.01), environ={})
    usable, _ = usable_ensemble(ensemble, {"KEY_B1": "k"})
    spend = Budget(None)
    runtime = EnsembleRuntime(
        usable,
        metrics=NullMetrics(),
        provider_factory=lambda endpoint, timeout_s: provider,
    )
    budget = 0.03  # each call of rater b costs 0.02 USD
    for text in ("first passage", "second passage"):
        assert unavailable_raters(runtime.runners, budget, spend.spent_today()) == {}
        result = asyncio.run(score_passage(text, runtime, budget=spend))
        assert list(result.scores) == ["b"]
    assert provider.calls == 2 and math.isclose(spend.spent_today(), 0.04)
    skipped = unavailable_raters(runtime.runners, budget, spend.spent_today())
    assert skipped["b"].startswith("budget_exceeded")

    for route in runtime.runners["b"].router.routes:
        for _ in range(route.breaker.failure_threshold):
            route.breaker.record_failure()
    skipped = unavailable_raters(runtime.runners, None, 0.0)
    assert skipped["b"].startswith("circuit_open")


def test_a_rater_is_not_asked_when_its_worst_case_cost_does_not_fit_the_budget(
    tmp_path: Path,
) -> None:
    provider = AnsweringProvider()
    ensemble = load_ensemble(ensemble_file(tmp_path / "e.yaml", price=0.01), environ={})
    usable, _ = usable_ensemble(ensemble, {"KEY_B1": "k"})
    task = RatingTask("first passage")  # "second passage" is as long: the same worst case
    worst = worst_case_cost(usable.raters["b"], task.system, task.prompt)
    spend = Budget(worst + 0.01)  # the first fits; after its 0.02, the second does not
    runtime = EnsembleRuntime(
        usable,
        metrics=NullMetrics(),
        provider_factory=lambda endpoint, timeout_s: provider,
    )
    first = asyncio.run(score_passage("first passage", runtime, budget=spend))
    assert list(first.scores) == ["b"] and math.isclose(spend.spent_today(), 0.02)
    second = asyncio.run(score_passage("second passage", runtime, budget=spend))
    assert second.missing["b"].startswith("budget_exceeded") and provider.calls == 1
    assert spend.reserved_usd == 0.0 and math.isclose(spend.spent_today(), 0.02)
