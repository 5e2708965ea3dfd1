"""The two entry points of each server (``assay serve X``, ``python -m assay_serving.X``) take every
option of the server's settings by the same flags, defaults and environment variables."""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from assay.cli import app
from assay.serving.settings import (
    BiasScorerServerSettings,
    ClassifierServerSettings,
    ServerSettings,
    env_name,
    option_fields,
)


@dataclass(frozen=True)
class Server:
    command: str
    settings: type[ServerSettings]
    entry_module: str
    server_module: str


SERVERS = [
    Server(
        "classifier",
        ClassifierServerSettings,
        "assay_serving.classifier",
        "assay.serving.classifier",
    ),
    Server(
        "bias-scorer",
        BiasScorerServerSettings,
        "assay_serving.bias_scorer",
        "assay.serving.bias_scorer",
    ),
]
ENTRY_DEFAULTS = {"classifier": {"model_uri"}}
"""Defaults only ``assay serve`` has (the registry's production model)."""


def _ids(server: Server) -> str:
    return server.command


def click_command(name: str) -> Any:
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    return serve.commands[name]


def typer_flags(server: Server) -> dict[str, set[str]]:
    """Per settings field, every flag ``assay serve`` accepts for it (aliases included)."""
    flags: dict[str, set[str]] = {}
    for param in click_command(server.command).params:
        if param.name in ("help", "context"):
            continue
        field = param.name.removesuffix("__alias")
        flags.setdefault(field, set()).update(param.opts, param.secondary_opts)
    return flags


def argparse_flags(server: Server) -> dict[str, set[str]]:
    """Per destination, every flag ``python -m`` accepts that is not KServe's own argument."""
    from assay.serving.startup import kserve_arguments

    kserve = {(tuple(a.option_strings), a.help) for a in kserve_arguments()._actions}
    parser = importlib.import_module(server.entry_module).build_parser()
    flags: dict[str, set[str]] = {}
    for action in parser._actions:
        if (tuple(action.option_strings), action.help) not in kserve and action.dest != "help":
            flags.setdefault(action.dest, set()).update(action.option_strings)
    return flags


def declared_flags(server: Server) -> dict[str, set[str]]:
    return {
        name: {*flags.names, *([flags.off] if flags.off else [])}
        for name, _, flags in option_fields(server.settings)
    }


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for server in SERVERS:
        for name, field, _ in option_fields(server.settings):
            monkeypatch.delenv(env_name(name, field), raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the commands trim it for KServe
    return monkeypatch


def via_assay(server: Server, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """The settings ``assay serve <server> ARGS`` hands to the server (which is not started)."""
    received: list[Any] = []
    fake = types.ModuleType(server.server_module)
    fake.run_server = lambda settings, *_: received.append(settings)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, server.server_module, fake)
    result = CliRunner().invoke(app, ["serve", server.command, *args])
    assert result.exit_code == 0, result.output
    return received[0]


def via_module(server: Server, *args: str) -> Any:
    """The settings ``python -m assay_serving.<server> ARGS`` builds."""
    return importlib.import_module(server.entry_module).options_from_args(list(args))


@pytest.mark.parametrize("server", SERVERS, ids=_ids)
def test_both_entry_points_take_every_option_by_the_same_flags(server: Server) -> None:
    declared = declared_flags(server)
    assert typer_flags(server) == declared
    assert argparse_flags(server) == declared


@pytest.mark.parametrize("server", SERVERS, ids=_ids)
def test_both_entry_points_name_each_options_environment_variable(server: Server) -> None:
    typer_help = {p.name: p.help or "" for p in click_command(server.command).params}
    parser = importlib.import_module(server.entry_module).build_parser()
    argparse_help = {a.dest: a.help or "" for a in parser._actions if a.const is not False}
    for name, field, _ in option_fields(server.settings):
        variable = f"env {env_name(name, field)}"
        assert variable in typer_help[name], name
        assert variable in argparse_help[name], name


@pytest.mark.parametrize("server", SERVERS, ids=_ids)
def test_both_entry_points_have_the_settings_defaults(
    server: Server, clean_env: pytest.MonkeyPatch
) -> None:
    defaults = server.settings()
    entry_only = ENTRY_DEFAULTS.get(server.command, set())
    shown = {p.name: p.default for p in click_command(server.command).params}
    for name, field, _ in option_fields(server.settings):
        if name not in entry_only:
            assert shown[name] == field.default, name
    assert via_module(server) == defaults
    pinned = [f"--model={defaults.model_dump()[name]}" for name in entry_only]
    assert via_assay(server, clean_env, *pinned) == defaults


def _other_value(name: str, field: Any) -> Any:
    """A valid value that differs from the field's default."""
    default = field.default
    if isinstance(default, bool):
        return not default
    if name.endswith("port"):
        return default + 1000
    if name == "log_sample_rate":
        return 0.5
    if name == "log_level":
        return "warning"
    if isinstance(default, int | float):
        return default + 3
    if field.annotation == float | None:
        return 2.5
    return f"{default or 'value'}-from-env"


@pytest.mark.parametrize("server", SERVERS, ids=_ids)
def test_every_environment_variable_takes_effect_through_both_entry_points(
    server: Server, clean_env: pytest.MonkeyPatch
) -> None:
    expected = {}
    for name, field, _ in option_fields(server.settings):
        value = _other_value(name, field)
        clean_env.setenv(env_name(name, field), str(value).lower())
        expected[name] = value
    env_only = set(server.settings.model_fields) - set(expected)
    assert env_only <= {"redis_password"}  # the scorer's: see the test below
    for settings in (via_module(server), via_assay(server, clean_env)):
        assert settings.model_dump(exclude=env_only) == expected


def test_the_redis_password_comes_from_the_environment_only(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """ASSAY_REDIS_PASSWORD (a Secret in the cluster) joins --redis-url's credentials; there is
    no flag for it (a command line shows in the process list) and no repr shows it."""
    server = SERVERS[1]
    assert server.settings is BiasScorerServerSettings
    clean_env.setenv("ASSAY_REDIS_URL", "redis://redis.assay.svc:6379/0")
    clean_env.setenv("ASSAY_REDIS_PASSWORD", "pa:ss")
    for settings in (via_module(server), via_assay(server, clean_env)):
        assert settings.redis_connection_url == "redis://:pa%3Ass@redis.assay.svc:6379/0"
        assert "pa:ss" not in repr(settings)
    result = CliRunner().invoke(app, ["serve", server.command, "--redis-password", "x"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_max_batch_rows_from_the_environment_and_the_command_line(
    clean_env: pytest.MonkeyPatch,
) -> None:
    classifier = SERVERS[0]
    clean_env.setenv("ASSAY_MAX_BATCH_ROWS", "7")
    clean_env.setenv("ASSAY_RELOAD_INTERVAL", "2.5")
    for settings in (via_module(classifier), via_assay(classifier, clean_env, "--model=/m")):
        assert (settings.max_batch_rows, settings.reload_interval) == (7, 2.5)
    assert via_module(classifier, "--max_batch_rows=9").max_batch_rows == 9
    assert via_assay(classifier, clean_env, "--max-batch-rows=9").max_batch_rows == 9
    # the bias scorer has its own variable for the same flag
    assert via_module(SERVERS[1]).max_batch_rows == 64


def test_assay_serve_classifier_defaults_to_the_registry_model(
    clean_env: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    clean_env.setenv("ASSAY_REGISTRY", f"file://{tmp_path}")
    settings = via_assay(SERVERS[0], clean_env)
    assert settings.model_uri == f"file://{tmp_path}/wdbc-classifier/latest"
    clean_env.setenv("ASSAY_MODEL_URI", "/models/v3")
    assert via_assay(SERVERS[0], clean_env).model_uri == "/models/v3"


def test_old_spellings_still_work_on_both_entry_points(clean_env: pytest.MonkeyPatch) -> None:
    bias = SERVERS[1]
    old = ["--raters=e.yaml", "--rater_deadline_s=10", "--daily_budget_usd=2"]
    for settings in (via_module(bias, *old), via_assay(bias, clean_env, *old)):
        assert (settings.ensemble_path, settings.rater_deadline_s) == ("e.yaml", 10.0)
        assert settings.daily_budget_usd == 2.0
    assert via_module(SERVERS[0], "--compile", "off", "--enable_grpc=false").compile is False
    assert via_assay(SERVERS[0], clean_env, "--no-compile", "--no-grpc").enable_grpc is False


def test_a_bad_value_names_its_flag_and_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ASSAY_SCORER_MAX_CONCURRENCY", "0")
    result = CliRunner().invoke(app, ["serve", "bias-scorer"])
    assert result.exit_code == 2
    assert "--max-concurrency / ASSAY_SCORER_MAX_CONCURRENCY" in " ".join(result.output.split())
    with pytest.raises(SystemExit) as exited:
        via_module(SERVERS[1])
    assert exited.value.code == 2
