"""The simulated provider's configuration, fault spec, rate window and rating model (no server)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from assay.bias.prompt import parse_rating
from assay.errors import ConfigError
from assay.llm.errors import ResponseParseError
from assay.sim import SimConfig, SimModelConfig, parse_fault_spec, text_key, truth_table_from_pairs
from assay.sim.rater import REFUSAL_TEXT, hashed_truth, malformed_answer, rate
from assay.sim.state import RollingWindow, SimState

NAMES = ["sim-gpt", "sim-claude", "sim-llama"]


def test_fault_spec_wildcard_and_per_model_override() -> None:
    spec = (
        "sim-gpt:429=0.05,500=0.1,timeout=0.02,malformed=0.03;*:rpm=600,503=0.01;sim-llama:rpm=60"
    )
    parsed = parse_fault_spec(spec, NAMES)
    assert parsed["sim-gpt"] == {
        "rate_limit": 0.05,
        "server_error": 0.1,
        "timeout": 0.02,
        "malformed": 0.03,
        "rpm": 600,
        "unavailable": 0.01,
    }
    assert parsed["sim-claude"] == {"rpm": 600, "unavailable": 0.01}
    assert parsed["sim-llama"] == {"rpm": 60, "unavailable": 0.01}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sim-bard:500=0.1", "unknown model 'sim-bard'"),
        ("sim-gpt:418=0.1", "KEY one of 429, 500"),
        ("sim-gpt:500=1.5", "probability in"),
        ("sim-gpt:500=lots", "not a number"),
        ("sim-gpt:rpm=0", "positive whole number"),
        ("sim-gpt:rpm=2.5", "positive whole number"),
        ("500=0.1", "expected MODEL:KEY=VALUE"),
        ("sim-gpt:500=0.6,503=0.6", "add up to more than 1"),
    ],
)
def test_bad_fault_specs_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SimConfig().with_faults(spec)


def test_with_faults_sets_rates_and_rpm_without_touching_others() -> None:
    config = SimConfig().with_faults("sim-claude:badjson=0.2,rpm=30")
    claude = config.model("sim-claude")
    assert claude is not None and claude.rpm == 30 and claude.faults.bad_body == 0.2
    gpt = config.model("sim-gpt")
    assert gpt is not None and gpt.rpm is None and gpt.faults.total() == 0


def test_yaml_config_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "seed: 3\nrate_window_s: 10\nmodels:\n"
        "  - {name: sim-x, bias_offset: 0.5, noise: 0, rpm: 100, faults: {server_error: 0.1}}\n"
    )
    config = SimConfig.from_yaml(path)
    assert config.seed == 3 and config.models[0].faults.server_error == 0.1
    path.write_text("models:\n  - {name: sim-x, colour: red}\n")
    with pytest.raises(ConfigError, match=r"models\.0\.colour"):
        SimConfig.from_yaml(path)
    path.write_text("seed: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SimConfig.from_yaml(path)


def test_truth_table_from_corpus_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.csv"
    corpus.write_text('text,true_score\n"A passage.",1.5\n"Another one.",-0.5\n')
    config = SimConfig(truth={text_key("Inline."): 0.25}, truth_file=corpus)
    table = config.truth_table()
    assert table == {
        text_key("A passage."): 1.5,
        text_key("Another one."): -0.5,
        text_key("Inline."): 0.25,
    }
    assert truth_table_from_pairs([("  A passage.\n", 1.5)]) == {text_key("A passage."): 1.5}
    with pytest.raises(ConfigError, match="no column"):
        SimConfig(truth_file=corpus, truth_score_column="bias").truth_table()


def test_rolling_window_admits_at_most_limit_per_window() -> None:
    window = RollingWindow(limit=3, window_s=60)
    assert [window.try_admit(t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert window.try_admit(30.0) == pytest.approx(30.0)
    assert window.remaining(59.9) == 0
    assert window.try_admit(60.0) is None  # the t=0 admission left the window
    assert window.try_admit(60.5) == pytest.approx(0.5)


def test_state_counts_violations_on_a_fake_clock() -> None:
    now = [0.0]
    state = SimState({"m": 2, "free": None}, window_s=10, clock=lambda: now[0])
    results = []
    for t in (0.0, 0.5, 1.0, 10.2, 10.4):
        now[0] = t
        results.append(state.receive("m"))
        state.receive("free")
    assert [r is None for r in results] == [True, True, False, True, False]
    snap = state.snapshot()["models"]
    assert snap["m"]["violations"] == 2 and snap["m"]["admitted"] == 3
    assert snap["m"]["peak_window_requests"] == 2
    assert snap["free"]["violations"] == 0 and snap["free"]["admitted"] == 5
    assert [(row["second"], row["requests"]) for row in snap["m"]["timeline"]] == [
        (0, 2),
        (1, 0),
        (10, 1),
    ]


def test_ratings_are_deterministic_per_seed_model_and_text() -> None:
    model = SimModelConfig(name="sim-gpt", noise=0.4)
    texts = [f"Passage number {i}." for i in range(20)]
    first = [rate(model, 1, t, {}).text for t in texts]
    assert first == [rate(model, 1, t, {}).text for t in texts]
    assert first != [rate(model, 2, t, {}).text for t in texts]
    other = SimModelConfig(name="sim-claude", noise=0.4)
    assert first != [rate(other, 1, t, {}).text for t in texts]


def test_ratings_follow_truth_offset_and_clamp() -> None:
    exact = SimModelConfig(name="sim-exact", noise=0.0, bias_offset=0.0)
    truth = {text_key("Known."): -1.25}
    assert parse_rating(rate(exact, 0, "Known.", truth).text).score == -1.25
    shifted = SimModelConfig(name="sim-right", noise=0.0, bias_offset=1.5)
    assert parse_rating(rate(shifted, 0, "Known.", {text_key("Known."): 1.0}).text).score == 2.0
    assert parse_rating(rate(exact, 0, "Unknown.", {}).text).score == hashed_truth("Unknown.")
    assert -2 <= hashed_truth("anything") <= 2


def test_refusing_model_refuses_and_the_refusal_does_not_parse() -> None:
    model = SimModelConfig(name="sim-shy", refusal_rate=1.0)
    answer = rate(model, 0, "A passage.", {})
    assert answer.refused and answer.text == REFUSAL_TEXT
    with pytest.raises(ResponseParseError):
        parse_rating(answer.text)


def test_every_malformed_variant_fails_strict_parsing() -> None:
    good = rate(SimModelConfig(name="sim-gpt"), 0, "A passage.", {}).text
    rng = random.Random(0)
    for _ in range(50):
        with pytest.raises(ResponseParseError):
            parse_rating(malformed_answer(good, rng))


def test_example_config_shipped_with_the_package_loads() -> None:
    import assay.sim

    config = SimConfig.from_yaml(Path(assay.sim.__file__).parent / "example-config.yaml")
    assert [m.name for m in config.models] == NAMES
    assert all(m.rpm == 600 for m in config.models)
