"""Ensemble files: the bundled default, env expansion and overrides, clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.llm.ensemble import bundled_ensemble_path, endpoints_of, load_ensemble


def test_bundled_sim_ensemble_has_three_providers_pointed_at_the_sim():
    ensemble = load_ensemble(None, environ={"ASSAY_SIM_URL": "http://127.0.0.1:9999"})
    assert {r.provider for r in ensemble.raters.values()} == {"openai", "anthropic", "together"}
    assert {r.model for r in ensemble.raters.values()} == {"sim-gpt", "sim-claude", "sim-llama"}
    urls = [ep.base_url for name in ensemble.raters for ep in endpoints_of(ensemble, name)]
    assert all(u and u.startswith("http://127.0.0.1:9999") for u in urls)
    assert bundled_ensemble_path().is_file()


def test_assay_ensemble_env_selects_the_file(tmp_path: Path):
    path = tmp_path / "e.yaml"
    path.write_text("raters:\n  x: {provider: together, model: m}\n")
    assert list(load_ensemble(None, environ={"ASSAY_ENSEMBLE": str(path)}).raters) == ["x"]


def test_toml_and_env_overrides(tmp_path: Path):
    path = tmp_path / "e.toml"
    path.write_text(
        '[raters.my-gpt]\nprovider = "openai"\nmodel = "gpt-4o"\nrpm = 100\n'
        '[[raters.my-gpt.endpoints]]\nbase_url = "https://a/v1"\napi_key_env = "KEY_A"\n'
    )
    env = {
        "ASSAY_RATER_MY_GPT_RPM": "250",
        "ASSAY_RATER_MY_GPT_BASE_URLS": "https://b/v1, https://c/v1",
    }
    rater = load_ensemble(path, environ=env).raters["my-gpt"]
    assert rater.rpm == 250
    assert [e.base_url for e in rater.endpoints] == ["https://b/v1", "https://c/v1"]
    assert [e.api_key_env for e in rater.endpoints] == ["KEY_A", "KEY_A"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("raters:\n  x: {provider: openai, model: m, rpm: -1}\n", "raters.x.rpm"),
        ("raters:\n  x: {provider: nope, model: m}\n", "unknown provider 'nope'"),
        (
            "raters:\n  x: {provider: openai, model: m, endpoints: [{api_key: sk-123}]}\n",
            "api_key",
        ),
        (
            "raters:\n  x: {provider: openai, model: m, endpoints: [{api_key_env: sk-123}]}\n",
            "NAME of an environment variable",
        ),
        ("raters: {}\n", "raters"),
        ("- a list\n", "must hold a mapping"),
        ("raters: [\n", "not valid YAML"),
        ("raters:\n  x: {provider: openai, model: m, base: ${NOPE_UNSET}}\n", "NOPE_UNSET"),
    ],
)
def test_bad_files_raise_config_error_naming_the_problem(tmp_path: Path, body, expected):
    path = tmp_path / "e.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("$", r"\$")):
        load_ensemble(path, environ={})


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_ensemble(Path("/nonexistent/e.yaml"))


def test_keys_are_read_from_the_named_variable_only(tmp_path: Path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "raters:\n  x: {provider: openai, model: m, endpoints: [{api_key_env: MY_K}]}\n"
    )
    (endpoint,) = endpoints_of(load_ensemble(path, environ={}), "x")
    assert endpoint.api_key({"MY_K": "secret"}) == "secret"
    with pytest.raises(ConfigError, match="MY_K") as info:
        endpoint.api_key({})
    assert "secret" not in str(info.value)
    assert "secret" not in endpoint.key and "secret" not in endpoint.label
