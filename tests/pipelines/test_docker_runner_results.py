"""`--runner docker` gives the results of the default runner: the same pipelines, every step in a
container of the project image (podman's Docker API), the Ray steps on a Ray head container, the
bias study's simulated endpoint in a container beside them.

Each study runs twice through the real `assay` CLI on a tiny protocol, once per runner, and the
outputs are compared whole, leaving out only what measures time (seconds, latencies) and the
temporary paths the outputs were read from. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = [
    pytest.mark.container,
    pytest.mark.pipeline,
    pytest.mark.slow,
    pytest.mark.integration,
]

TRAIN = ["--folds", "2", "--repeats", "1", "--tuning-iter", "1"]
TRAIN += ["--models", "logistic_regression,adaboost", "--workers", "2"]
BIAS = ["--passages", "30", "--textbooks", "5", "--draws", "300", "--tune", "300"]
BIAS += ["--chains", "2", "--n-boot", "50"]
TIME_WORDS = ("seconds", "latency", "timings", "elapsed")
RATING_KEY = ("passage_id", "rater", "model", "prompt_version")
"""A rating's key in the ratings store."""
# The two studies' runs share nothing: under xdist each pair goes to a worker of its own.
TRAINING_RUNS = pytest.mark.xdist_group("docker-runner-training")
BIAS_RUNS = pytest.mark.xdist_group("docker-runner-bias")


def _assay(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("assay")), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=cwd, env=env)
    out = Path(args[args.index("--out") + 1])
    log = (out / "pipeline.log").read_text()[-4000:] if (out / "pipeline.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    return done


def _docker_args(docker_host: str, image: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return ["--runner", "docker", "--image", image], {**env, "DOCKER_HOST": docker_host}


@pytest.fixture(scope="module")
def train_in_containers(
    docker_host: str, container_image: str, wdbc_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    base = tmp_path_factory.mktemp("train-docker")
    runner, env = _docker_args(docker_host, container_image)
    args = ["train", *TRAIN, "--data", str(wdbc_csv), *runner]
    _assay(
        [*args, "--registry", f"file://{base / 'registry'}", "--out", str(base / "run")], base, env
    )
    return base


@pytest.fixture(scope="module")
def train_in_subprocesses(
    wdbc_csv: Path, tmp_path_factory: pytest.TempPathFactory, ray_cluster: dict[str, str]
) -> Path:
    base = tmp_path_factory.mktemp("train-local")
    args = ["train", *TRAIN, "--data", str(wdbc_csv)]
    args += ["--registry", f"file://{base / 'registry'}", "--out", str(base / "run")]
    _assay(args, base, {**os.environ, **ray_cluster})
    return base


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not any(w in k for w in TIME_WORDS)}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _metrics(base: Path) -> dict[str, Any]:
    metrics = json.loads((base / "run" / "metrics.json").read_text())
    metrics["data"].pop("source")  # the kfp task folder it was read from
    return dict(_untimed(metrics))


@TRAINING_RUNS
def test_training_in_containers_gives_the_subprocess_runners_results(
    train_in_containers: Path, train_in_subprocesses: Path
) -> None:
    docker, local = _metrics(train_in_containers), _metrics(train_in_subprocesses)
    assert docker["selection"] == local["selection"]
    assert docker["selected_model"] == local["selected_model"]
    assert docker["clinical_threshold"] == local["clinical_threshold"]
    assert docker == local  # every held-out figure, leaderboard, curve and table


@TRAINING_RUNS
def test_training_in_containers_registers_into_the_host_registry(
    train_in_containers: Path,
) -> None:
    record = json.loads((train_in_containers / "run" / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert record["runner"].startswith("kfp.local (DockerRunner)")
    assert record["registered"]["version"] == "v1"
    card = train_in_containers / "registry" / "wdbc-classifier" / "v1" / "model-card.json"
    assert json.loads(card.read_text())["version"] == "v1"


@pytest.fixture(scope="module")
def bias_in_containers(
    docker_host: str, container_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    base = tmp_path_factory.mktemp("bias-docker")
    runner, env = _docker_args(docker_host, container_image)
    _assay(["bias-study", *BIAS, *runner, "--out", str(base / "run")], base, env)
    return base / "run"


@pytest.fixture(scope="module")
def bias_in_subprocesses(
    tmp_path_factory: pytest.TempPathFactory, ray_cluster: dict[str, str]
) -> Path:
    base = tmp_path_factory.mktemp("bias-local")
    _assay(["bias-study", *BIAS, "--out", str(base / "run")], base, {**os.environ, **ray_cluster})
    return base / "run"


def _ratings(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "ratings.parquet")
    frame = frame.drop(columns=[c for c in frame.columns if any(w in c for w in TIME_WORDS)])
    return frame.sort_values(list(RATING_KEY)).reset_index(drop=True)


@BIAS_RUNS
def test_bias_study_in_containers_gives_the_subprocess_runners_results(
    bias_in_containers: Path, bias_in_subprocesses: Path
) -> None:
    docker, local = _ratings(bias_in_containers), _ratings(bias_in_subprocesses)
    assert len(docker) > 0
    pd.testing.assert_frame_equal(docker, local)
    summaries = [
        _untimed(json.loads((run / "summary.json").read_text()))
        for run in (bias_in_containers, bias_in_subprocesses)
    ]
    assert summaries[0] == summaries[1]
