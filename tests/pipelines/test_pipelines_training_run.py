"""The whole training pipeline through kfp.local, started by the real `assay train` CLI.

One small run (3 folds x 1 repeat, 1 tuning candidate, 2 models) on WDBC supplied as a CSV in
the documented format; every test below inspects that run. Nothing is mocked: kfp.local runs
each component in a subprocess, Ray runs locally (the session's one, tests/conftest.py, which
the train-models step joins through RAY_ADDRESS), the registry is a file:// folder in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.integration]

MODELS = ("adaboost", "logistic_regression")


@dataclass
class TrainedRun:
    run_dir: Path
    registry: str
    stdout: str


def assay_cli() -> str:
    return str(Path(sys.executable).with_name("assay"))


@pytest.fixture(scope="module")
def trained(
    wdbc_csv: Path, tmp_path_factory: pytest.TempPathFactory, ray_cluster: dict[str, str]
) -> TrainedRun:
    # The train-models step connects to the session's local Ray (RAY_ADDRESS, as a component
    # connects to a KubeRay head in the cluster) instead of paying a Ray start-up of its own.
    base = tmp_path_factory.mktemp("train")
    registry = "file://" + str(base / "registry")
    run_dir = base / "run"
    command = [
        assay_cli(), "train",
        "--data", str(wdbc_csv),
        "--folds", "3", "--repeats", "1", "--tuning-iter", "1",
        "--models", ",".join(MODELS),
        "--workers", "2",
        "--registry", registry,
        "--out", str(run_dir),
    ]  # fmt: skip
    env = {**os.environ, **ray_cluster}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=base, env=env)
    assert done.returncode == 0, done.stdout + done.stderr + _log_tail(run_dir)
    return TrainedRun(run_dir=run_dir, registry=registry, stdout=done.stdout)


def _log_tail(run_dir: Path) -> str:
    log = run_dir / "pipeline.log"
    return log.read_text()[-4000:] if log.exists() else ""


def test_cli_reports_run_folder_and_registered_version(trained: TrainedRun) -> None:
    assert "Registered: v1" in trained.stdout
    assert str(trained.run_dir) in trained.stdout.replace("\n", "")
    record = json.loads((trained.run_dir / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert record["registered"]["version"] == "v1"
    assert record["arguments"]["folds"] == 3
    assert record["arguments"]["data"].endswith("wdbc.csv")


def test_metrics_json_holds_every_model_with_cv_summary(trained: TrainedRun) -> None:
    metrics = json.loads((trained.run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == set(MODELS)
    assert metrics["selected_model"] in MODELS
    assert metrics["config"]["folds"] == 3 and metrics["config"]["repeats"] == 1
    assert metrics["data"]["rows"] == 569 and metrics["data"]["malignant"] == 212
    scalars = metrics["scalar_metrics"]
    assert scalars["roc_auc_ci_low"] <= scalars["roc_auc_mean"] <= scalars["roc_auc_ci_high"]
    assert scalars["roc_auc_mean"] > 0.95
    assert metrics["protocol"]


def test_report_plots_and_vif_are_in_the_run_folder(trained: TrainedRun) -> None:
    report = (trained.run_dir / "report.html").read_text()
    assert "data:image/png;base64," in report  # self-contained: plots inlined
    assert list(trained.run_dir.glob("*.png"))
    vif = (trained.run_dir / "vif.csv").read_text().splitlines()
    assert len(vif) == 31  # header + 30 features
    assert (trained.run_dir / "summary.md").read_text().startswith("# Selected model")


def test_kfp_artifacts_carry_dashboard_metrics(trained: TrainedRun) -> None:
    (kfp_run,) = (trained.run_dir / "kfp").iterdir()
    output = json.loads((kfp_run / "evaluate-models" / "executor_output.json").read_text())
    artifacts = output["artifacts"]
    scalar = artifacts["metrics"]["artifacts"][0]["metadata"]
    assert 0.95 < scalar["roc_auc_mean"] <= 1.0
    classification = artifacts["classification_metrics"]["artifacts"][0]["metadata"]
    assert len(classification["confidenceMetrics"]) >= 3
    labels = [spec["displayName"] for spec in classification["confusionMatrix"]["annotationSpecs"]]
    assert labels == ["benign", "malignant"]
    rows = [row["row"] for row in classification["confusionMatrix"]["rows"]]
    assert sum(map(sum, rows)) == 569


def test_registered_model_loads_with_sklearn_and_predicts_malignant_as_1(
    trained: TrainedRun, tmp_path: Path
) -> None:
    import joblib
    from sklearn.pipeline import Pipeline

    from assay.data.wdbc import load_dataset
    from assay.registry import model_trust, open_registry

    registry = open_registry(trained.registry)
    assert registry.versions("wdbc-classifier") == ["v1"]
    assert registry.aliases("wdbc-classifier") == {"latest": "v1"}
    # signed by the register step with the local registry's own key, which readers trust
    trust = model_trust(registry_root=registry.root)
    assert registry.verify("wdbc-classifier", "v1", trust).startswith("ok (signed by ")
    folder = registry.download("wdbc-classifier", "latest", tmp_path / "model")
    card = json.loads((folder / "model-card.json").read_text())
    assert card["version"] == "v1" and card["positive_label"] == 1

    model = joblib.load(folder / "model.joblib")
    assert isinstance(model, Pipeline)
    assert not [s for s in model.named_steps.values() if type(s).__module__.startswith("imblearn")]
    ds = load_dataset()
    probability = model.predict_proba(ds.X.to_numpy())[:, 1]
    predicted = (probability >= card["threshold"]).astype(int)
    malignant = ds.y.to_numpy() == 1
    assert probability[malignant].mean() > probability[~malignant].mean() + 0.5
    assert (predicted[malignant] == 1).mean() >= 0.95


def test_models_list_shows_the_new_version(trained: TrainedRun) -> None:
    done = subprocess.run(
        [assay_cli(), "models", "list", "--registry", trained.registry],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "v1" in done.stdout and "latest" in done.stdout
