"""One log format for every record a server writes.

``assay serve classifier`` and ``assay serve bias-scorer --sim`` run as real processes on
127.0.0.1 at ``--log-level=debug`` (the most records: assay's, KServe's, uvicorn's, gRPC's, Python
warnings), answer a good and a bad request and are stopped with SIGTERM (the shutdown records
too). Every line of their stdout and stderr must be one JSON object naming its logger, level,
timestamp and event. A bad ``--log-level`` is refused with one sentence and a non-zero exit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _bias_scorer_support import launch as launch_scorer
from _serving_support import CLI_ENTRY, MODEL_NAME, launch, wait_ready, wdbc

pytestmark = pytest.mark.integration

REQUIRED = ("logger", "level", "timestamp", "event")


def records(text: str) -> list[dict[str, Any]]:
    """Every non-empty line as a JSON record; the lines that are not such records fail."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    parsed, bad = [], []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not isinstance(record, dict) or not all(record.get(key) for key in REQUIRED):
            bad.append(line)
        else:
            parsed.append(record)
    assert bad == [], f"{len(bad)} of {len(lines)} lines are not JSON records with {REQUIRED}"
    return parsed


def test_every_line_of_the_classifier_server_is_a_json_record(
    registered_models: Any, tmp_path: Path
) -> None:
    folder = shutil.copytree(registered_models.v1_dir, tmp_path / "model")
    server = launch(CLI_ENTRY, "--model", str(folder), tmp_path / "cli.log", "--log-level=debug")
    try:
        wait_ready(server)
        X = wdbc()[0][:3]
        tensor = {"name": "input-0", "shape": [3, 30], "datatype": "FP64"}
        good = {"inputs": [{**tensor, "data": X.ravel().tolist()}]}
        bad = {"inputs": [{**tensor, "shape": [1, 2], "data": [1.0, 2.0]}]}
        url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
        assert httpx.post(url, json=good, timeout=30).status_code == 200
        assert httpx.post(url, json=bad, timeout=30).status_code == 400
    finally:
        server.stop()
    logged = records(server.logs())
    loggers = {record["logger"] for record in logged}
    assert {"kserve", "uvicorn.error", "assay_serving.classifier"} <= loggers, loggers
    events = {record["event"] for record in logged}
    assert {"model_loaded", "request_rejected", "Finished server process"} <= {
        event.split(" [")[0] for event in events
    }


def test_every_line_of_the_bias_scorer_is_a_json_record(tmp_path: Path) -> None:
    scorer = launch_scorer("cli", ["--sim", "--log-level=debug"], tmp_path / "scorer.log")
    try:
        scorer.wait_ready()
        assert scorer.infer(["A short passage about the harvest."]).status_code == 200
        assert scorer.infer([""]).status_code == 400
    finally:
        scorer.stop()
    loggers = {record["logger"] for record in records(scorer.logs())}
    assert "kserve" in loggers, loggers
    assert any(name.startswith(("serving.", "assay.")) for name in loggers), loggers


@pytest.mark.parametrize(
    "command",
    [
        ["assay", "serve", "classifier", "--log-level", "verbose", "--model", "/nonexistent"],
        ["assay", "--log-level", "verbose", "models", "--help"],
    ],
    ids=["serve", "root"],
)
def test_a_bad_log_level_is_one_sentence_and_a_non_zero_exit(command: list[str]) -> None:
    assay = str(Path(sys.executable).parent / "assay")
    done = subprocess.run(
        [assay, *command[1:]], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert message.startswith("error:") and "--log-level" in message and "'verbose'" in message
    assert all(level in message for level in ("debug", "info", "warning", "error"))
    assert message.count(". ") == 0 and done.stdout == ""  # one sentence, nothing else
