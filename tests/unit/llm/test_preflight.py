"""The preflight's offline parts: bundled models against the installed SDKs' own lists, the
worst-case cost and shortest duration, the age of prices and limits."""

from __future__ import annotations

from datetime import date

import pytest

from assay.errors import ConfigError
from assay.llm.ensemble import Endpoint, Ensemble, load_ensemble
from assay.llm.preflight import (
    ModelsEndpointUnreachable,
    check_models,
    plan_calls,
    sdk_model_ids,
    stale_terms,
)
from assay.llm.usage import estimate_tokens, worst_case_cost


def test_every_bundled_model_is_in_its_sdks_own_model_list() -> None:
    ensemble = load_ensemble("bundled:providers", environ={})
    checked = 0
    for rater, cfg in ensemble.raters.items():
        known = sdk_model_ids(cfg.provider)
        if known is None:  # together ships no list of model ids
            continue
        assert len(known) > 10, cfg.provider
        assert cfg.model in known, f"{rater}: {cfg.model} is not in the {cfg.provider} SDK"
        checked += 1
    assert checked == 2


def test_the_retired_model_is_gone_from_the_sdk_and_the_bundle() -> None:
    known = sdk_model_ids("anthropic")
    assert known is not None and "claude-3-5-haiku-20241022" not in known
    models = {c.model for c in load_ensemble("bundled:providers", environ={}).raters.values()}
    assert "claude-3-5-haiku-20241022" not in models


def unreachable(endpoint: Endpoint, key: str | None) -> frozenset[str]:
    raise ModelsEndpointUnreachable("ConnectError")


def ensemble_of(provider: str, model: str) -> Ensemble:
    return Ensemble.model_validate({"raters": {"r": {"provider": provider, "model": model}}})


def test_offline_an_unknown_model_fails_strictly_and_is_a_note_for_a_server() -> None:
    bogus = ensemble_of("openai", "gpt-bogus")
    with pytest.raises(ConfigError, match="not in the installed openai SDK's model list"):
        check_models(bogus, {}, unreachable)
    notes = check_models(bogus, {}, unreachable, strict=False)
    assert len(notes) == 1 and "gpt-bogus" in notes[0]
    assert check_models(ensemble_of("together", "any/model"), {}, unreachable)[0].endswith(
        "unreachable: ConnectError)"
    )


def test_a_listing_that_answers_decides() -> None:
    def listing(endpoint: Endpoint, key: str | None) -> frozenset[str]:
        return frozenset({"model-a", "model-b"})

    assert check_models(ensemble_of("openai", "model-a"), {}, listing) == []
    with pytest.raises(ConfigError, match=r"'gpt-4o-mini' is not offered at .*2 models listed"):
        check_models(ensemble_of("openai", "gpt-4o-mini"), {}, listing, strict=False)


def test_plan_is_worst_case_cost_and_the_slowest_raters_pace() -> None:
    ensemble = load_ensemble("bundled:providers", environ={})
    system, prompt = "s" * 400, "p" * 4000
    plan = plan_calls(ensemble, [(system, prompt)] * 600)
    by_rater = {r.rater: r for r in plan.raters}
    for rater, cfg in ensemble.raters.items():
        expected = 600 * worst_case_cost(cfg, system, prompt)
        assert by_rater[rater].worst_case_usd == pytest.approx(expected)
    anthropic = ensemble.raters["anthropic"]
    tokens = 600 * (estimate_tokens(system, prompt) + anthropic.max_tokens)
    expected_minutes = max(600 / anthropic.rpm, tokens / (anthropic.tpm or 1))
    assert by_rater["anthropic"].min_minutes == pytest.approx(expected_minutes)
    assert plan.min_minutes == max(r.min_minutes for r in plan.raters)
    assert plan.worst_case_usd == pytest.approx(sum(r.worst_case_usd for r in plan.raters))


def test_prices_older_than_the_set_age_are_flagged() -> None:
    ensemble = load_ensemble("bundled:providers", environ={})
    as_of = {cfg.terms.as_of for cfg in ensemble.raters.values() if cfg.terms}
    assert len(as_of) == 1 and all(cfg.terms for cfg in ensemble.raters.values())
    recorded = as_of.pop()
    assert stale_terms(ensemble, recorded) == []
    late = stale_terms(ensemble, date.fromordinal(recorded.toordinal() + 181))
    assert len(late) == 3 and all("181 days ago" in note for note in late)
    sim = load_ensemble("bundled:sim", environ={})
    assert stale_terms(sim, recorded) == []  # illustrative prices: nothing to re-check
    undated = Ensemble.model_validate(
        {"raters": {"r": {"provider": "openai", "model": "m", "price_per_1k_input": 0.001}}}
    )
    assert "no date or source" in stale_terms(undated, recorded)[0]
