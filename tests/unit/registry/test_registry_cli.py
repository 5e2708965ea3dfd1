"""`assay models list|show|promote` against a file:// registry in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import assay.commands.models as models_command
from assay.cli import app
from assay.registry import open_registry, registry_signer

runner = CliRunner()


@pytest.fixture
def registry_uri(tmp_path: Path, model_dir: Path) -> str:
    uri = "file://" + str(tmp_path / "reg")
    reg = open_registry(uri)
    local_key = registry_signer(reg.root)
    reg.register("wdbc-classifier", model_dir, local_key)
    reg.register("wdbc-classifier", model_dir, local_key)
    return uri


def test_models_list_shows_versions_aliases_and_metrics(
    registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models_command, "console", Console(width=200))
    result = runner.invoke(app, ["models", "list", "--registry", registry_uri])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "wdbc-classifier" in line]
    assert len(lines) == 2
    assert "v1" in lines[0] and "latest" not in lines[0]
    assert "v2" in lines[1] and "latest" in lines[1]
    assert "0.9930" in lines[1]  # roc_auc from the card
    assert "0.9810" in lines[1]  # sensitivity at the clinical threshold, not at 0.5


def test_models_show_prints_the_card(registry_uri: str) -> None:
    result = runner.invoke(
        app, ["models", "show", "wdbc-classifier", "v1", "--registry", registry_uri]
    )
    assert result.exit_code == 0, result.output
    card = json.loads(result.output[: result.output.rindex("}") + 1])
    assert card["version"] == "v1"


def test_models_promote_moves_production(
    registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_REGISTRY", registry_uri)  # the env var works like --registry
    result = runner.invoke(app, ["models", "promote", "wdbc-classifier", "v1"])
    assert result.exit_code == 0, result.output
    assert "production -> v1" in result.output
    assert open_registry(registry_uri).aliases("wdbc-classifier")["production"] == "v1"


def test_models_promote_unknown_version_exits_3(registry_uri: str) -> None:
    result = runner.invoke(
        app, ["models", "promote", "wdbc-classifier", "v9", "--registry", registry_uri]
    )
    assert result.exit_code == 3
    assert "has no version 'v9'" in result.output
    assert "production" not in open_registry(registry_uri).aliases("wdbc-classifier")
