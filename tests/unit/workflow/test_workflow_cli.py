"""`assay train`/`compile` argument handling that fails before any pipeline step runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.classify.config import TrainingSettings as TrainingParams
from assay.cli import app
from assay.commands.train import train

runner = CliRunner()


def test_malformed_csv_exits_2_with_the_validation_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,mean radius,diagnosis\n1,14.2,M\n")
    result = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "feature column(s) 'mean texture'" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()  # nothing launched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "nope"], "Invalid models"),
        (["--k-features", "0"], "Invalid k_features"),
        (["--deploy"], "--deploy needs a cluster"),
        (["--runner", "kfp"], "--runner kfp needs --host"),
        (["--runner", "kfp", "--host", "kfp:8888"], "--host must be an http(s) URL"),
        (["--registry", "gs://bucket"], "unsupported scheme 'gs'"),
        (
            ["--runner", "kfp", "--host", "http://kfp", "--registry", "/tmp/reg"],
            "is a local folder the cluster cannot reach",
        ),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KFP_HOST", raising=False)
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code in (2, 3), result.output
    assert message in " ".join(result.output.split())


def test_cli_pipeline_and_train_config_defaults_agree() -> None:
    from assay.classify.config import TrainConfig
    from assay_pipelines import get_pipeline

    params = {name: f.default for name, f in TrainingParams.model_fields.items()}
    pipeline_inputs = get_pipeline("training").component_spec.inputs
    assert set(params) == set(pipeline_inputs)
    for name, default in params.items():
        assert pipeline_inputs[name].default == default, name
    cli = {p.name: p.default.default for p in inspect.signature(train).parameters.values()}
    shared_with_cli = set(params) - {"data", "impute", "registry"}  # CLI: None / enum defaults
    for name in shared_with_cli:
        assert cli[name] == params[name], name
    assert cli["impute"].value == params["impute"]
    shared_with_config = ("k_features", "folds", "repeats", "tuning_iter", "seed")
    for name in (*shared_with_config, "target_sensitivity", "model_name"):
        assert TrainConfig.model_fields[name].default == params[name], name


def test_submit_rejects_unknown_parameters_before_contacting_kubeflow() -> None:
    result = runner.invoke(
        app, ["submit", "training", "--host", "http://127.0.0.1:9", "--param", "nope=1"]
    )
    assert result.exit_code == 2
    assert "has no parameter 'nope'" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "command",
    [["train", "--registry", "{tmp}/reg"], ["bias-study", "--passages", "10", "--textbooks", "5"]],
)
def test_runner_docker_without_an_engine_exits_2_before_any_step(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    out = tmp_path / "run"
    args = [arg.format(tmp=tmp_path) for arg in command]
    result = runner.invoke(app, [*args, "--runner", "docker", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--runner docker found no Docker-compatible engine" in " ".join(result.output.split())
    assert not (out / "pipeline.log").exists()  # no step started
