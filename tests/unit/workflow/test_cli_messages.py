"""What a new user's mistakes get back: one true sentence and a distinct exit code."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.commands._common import deprecated_spelling
from assay.errors import AssayError, ConfigError
from assay.serving.classifier_versions import source_from_uri
from assay.serving.settings import ClassifierServerSettings, settings_from

runner = CliRunner()


def squash(text: str) -> str:
    """Rich wraps long lines (dropping spaces at the breaks): compare without whitespace."""
    return "".join(text.split())


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"assay {version('assay')}"


def test_an_unknown_log_level_is_refused() -> None:
    result = runner.invoke(app, ["--log-level", "loud", "models", "list"])
    assert result.exit_code == 2
    assert "loud" in result.output and "debug" in result.output


def test_a_server_refuses_an_unknown_log_level_too() -> None:
    with pytest.raises(ConfigError, match=r"--log-level / ASSAY_LOG_LEVEL: .*not 'loud'"):
        settings_from(ClassifierServerSettings, {"log_level": "loud"})


def test_serving_a_missing_path_says_it_does_not_exist() -> None:
    with pytest.raises(AssayError) as caught:
        source_from_uri("/nonexistent")
    assert str(caught.value).startswith("/nonexistent does not exist")
    assert "form" not in str(caught.value)


def test_s3_registry_without_minio_endpoint_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MINIO_ENDPOINT", raising=False)
    result = runner.invoke(app, ["models", "list", "--registry", "s3://assay-models/registry"])
    assert result.exit_code == 2, result.output
    assert squash("need MINIO_ENDPOINT") in squash(result.output)
    assert "Retry" not in result.output and "localhost:9000')" not in result.output


def test_models_show_not_found_and_tampered_exit_differently(tmp_path: Path) -> None:
    """Not found is 3; tampered is 5 (tests/unit/registry/test_registry_attacks.py)."""
    result = runner.invoke(
        app, ["models", "show", "wdbc-classifier", "v1", "--registry", str(tmp_path)]
    )
    assert result.exit_code == 3, result.output


def test_missing_corpus_file_says_it_does_not_exist(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["bias-study", "--corpus", str(tmp_path / "gone.csv"), "--out", str(run_dir)]
    )
    assert result.exit_code == 2, result.output
    assert squash("gone.csv does not exist") in squash(result.output)
    assert "column" not in result.output
    assert not run_dir.exists()


def test_old_spelling_is_used_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_WORKERS", "3")
    assert deprecated_spelling(None, old_flag="--workers", old_env="ASSAY_WORKERS", new="x") == "3"
    assert deprecated_spelling(2, old_flag="--workers", old_env="ASSAY_WORKERS", new="x") == 2
    monkeypatch.delenv("ASSAY_WORKERS")
    assert deprecated_spelling(None, old_flag="--workers", old_env="ASSAY_WORKERS", new="x") is None


def test_train_old_workers_flag_warns_and_sets_ray_cpus() -> None:
    """--runner kfp without --host stops after the settings are built (exit 2)."""
    result = runner.invoke(app, ["train", "--workers", "-1", "--runner", "kfp"])
    assert result.exit_code == 2
    assert squash("--workers is deprecated") in squash(result.output)
    assert squash("Invalid ray_cpus") in squash(result.output)


def test_servers_read_the_old_model_name_variable_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ASSAY_SERVED_MODEL_NAME", raising=False)
    monkeypatch.setenv("ASSAY_MODEL_NAME", "old-name")
    assert settings_from(ClassifierServerSettings, {}).name == "old-name"
    assert "ASSAY_MODEL_NAME is deprecated" in capsys.readouterr().err
    monkeypatch.setenv("ASSAY_SERVED_MODEL_NAME", "new-name")
    assert settings_from(ClassifierServerSettings, {}).name == "new-name"
    assert settings_from(ClassifierServerSettings, {"name": "flag"}).name == "flag"
