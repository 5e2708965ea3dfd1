"""Bad rating set-ups stop before anything starts: exit 2, one sentence, no run folder.

Real parts: the `assay` command (typer's CliRunner, in this process), the simulated LLM endpoint on
127.0.0.1 answering ``GET /v1/models``, and ``python -m assay_serving.bias_scorer`` as a subprocess.
Real providers cannot be reached from this machine (no internet): those cases exercise the
offline path (the installed SDK's own model list).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from assay.cli import app
from assay.sim import start_sim_server

pytestmark = pytest.mark.integration
runner = CliRunner()
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY")
FAST_S = 60.0
"""Generous: a failed preflight takes seconds (imports), a started pipeline minutes."""


@pytest.fixture
def sim_url() -> Iterator[str]:
    with start_sim_server(port=0) as sim:
        yield sim.base_url


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASSAY_ENSEMBLE", "ASSAY_RATERS", "ASSAY_BUDGET", "ASSAY_NO_BUDGET_CAP"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_ensemble(path: Path, raters: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"name": "test", "raters": raters}))
    return path


def bogus_model_ensemble(tmp_path: Path, sim_url: str) -> Path:
    """An OpenAI-format rater on the simulator naming a model the simulator does not offer."""
    rater = {
        "provider": "openai",
        "model": "sim-bogus",
        "endpoints": [{"base_url": f"{sim_url}/v1"}],
    }
    return write_ensemble(tmp_path / "e.yaml", {"gpt": rater})


def study(run_dir: Path, *args: str) -> tuple[Any, float]:
    start = time.monotonic()
    result = runner.invoke(
        app, ["bias-study", "--passages", "20", "--textbooks", "5", "--out", str(run_dir), *args]
    )
    return result, time.monotonic() - start


def squash(text: str) -> str:
    """Rich wraps long lines for the terminal (inside long words too, dropping spaces): compare
    without whitespace."""
    return "".join(text.split())


def says(output: str, *phrases: str) -> bool:
    return all(squash(phrase) in squash(output) for phrase in phrases)


def assert_stopped_before_start(result: Any, elapsed: float, run_dir: Path) -> str:
    assert result.exit_code == 2, result.output
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())
    assert elapsed < FAST_S
    assert not says(result.output, "Running pipeline")
    return str(result.output)


def test_missing_ensemble_file_exits_2_without_a_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--ensemble", str(tmp_path / "nonexist.yaml"))
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "nonexist.yaml does not exist")


def test_old_raters_spelling_still_works_with_a_warning(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--raters", str(tmp_path / "nonexist.yaml"))
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "--raters is deprecated", "--ensemble")
    assert says(output, "nonexist.yaml does not exist")


def test_missing_key_of_the_bundled_providers_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also shows ``bundled:providers`` is the packaged file, not a path named like that."""
    for name in PROVIDER_KEYS:
        monkeypatch.delenv(name, raising=False)
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--ensemble", "bundled:providers")
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "OPENAI_API_KEY (its API key) is not set")
    assert not says(output, "bundled:providers does not exist")


def test_model_the_endpoint_does_not_list_exits_2(tmp_path: Path, sim_url: str) -> None:
    ensemble = bogus_model_ensemble(tmp_path, sim_url)
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--ensemble", str(ensemble), "--no-budget-cap")
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "model 'sim-bogus' is not offered at", "sim-gpt")


def test_unknown_model_of_an_unreachable_provider_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "not-a-real-key")
    endpoint = {
        "base_url": f"http://127.0.0.1:{closed_port()}",
        "api_key_env": "TEST_ANTHROPIC_KEY",
    }
    ensemble = write_ensemble(
        tmp_path / "e.yaml",
        {"claude": {"provider": "anthropic", "model": "claude-bogus-9", "endpoints": [endpoint]}},
    )
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--ensemble", str(ensemble), "--budget", "1")
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "'claude-bogus-9' is not in the installed anthropic SDK's model list")


def test_real_providers_without_a_budget_refuse_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CliRunner's stdin is not a terminal: no confirmation can be given, so exit 2."""
    for name in PROVIDER_KEYS:
        monkeypatch.setenv(name, "not-a-real-key")
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--ensemble", "bundled:providers")
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "may cost up to $", "--budget", "--no-budget-cap")
    assert says(output, "worst case $", "at the configured rate limits")


def test_babe_folder_without_labels_exits_2_before_the_pipeline(tmp_path: Path) -> None:
    (tmp_path / "babe").mkdir()
    run_dir = tmp_path / "run"
    result, elapsed = study(run_dir, "--babe", str(tmp_path / "babe"))
    output = assert_stopped_before_start(result, elapsed, run_dir)
    assert says(output, "raw_labels_SG2.csv is missing")


def scorer(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    full_env.pop("ASSAY_ENSEMBLE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "assay_serving.bias_scorer",
            "--http_port=0",
            "--grpc_port=0",
            *args,
        ],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_scorer_does_not_start_with_a_model_its_endpoint_does_not_list(
    tmp_path: Path, sim_url: str
) -> None:
    ensemble = bogus_model_ensemble(tmp_path, sim_url)
    done = scorer(["--ensemble", str(ensemble)], {})
    assert done.returncode == 2, done.stderr[-2000:]
    assert says(done.stderr, "model 'sim-bogus' is not offered at")


def test_scorer_does_not_start_without_a_key(tmp_path: Path) -> None:
    endpoint = {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key_env": "TEST_UNSET_KEY"}
    ensemble = write_ensemble(
        tmp_path / "e.yaml",
        {"gpt": {"provider": "openai", "model": "gpt-4o-mini", "endpoints": [endpoint]}},
    )
    done = scorer(["--ensemble", str(ensemble)], {"TEST_UNSET_KEY": ""})
    assert done.returncode == 2, done.stderr[-2000:]
    assert says(done.stderr, "TEST_UNSET_KEY (its API key) is not set")
