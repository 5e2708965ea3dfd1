"""A model file swapped in the registry after registration is never unpickled or served.

A real ``python -m serving.classifier`` process serves ``<registry>/wdbc-classifier/production``
(v1). The attacker replaces v2's ``model.joblib`` with a pickle that runs code when loaded, then
points ``production`` at v2 and the server reloads (SIGHUP). The reload must be refused with the
digest mismatch in the log, the pickle must not run, and inferences keep answering from v1.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from _hostile import code_running_pickle
from _serving_support import (
    MODEL_NAME,
    MODULE_ENTRY,
    ModelFixture,
    RunningServer,
    launch,
    wait_ready,
    wdbc,
)

from assay.registry import open_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _infer(server: RunningServer) -> httpx.Response:
    rows = wdbc()[0][:4]
    body = {
        "inputs": [
            {"name": "input-0", "shape": [4, 30], "datatype": "FP64", "data": rows.ravel().tolist()}
        ]
    }
    return httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=30)


def _wait_for_log(server: RunningServer, text: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in server.logs():
            return server.logs()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the server log:\n{server.logs()}")


def test_tampered_model_file_reload_is_refused_and_previous_version_keeps_serving(
    registered_models: ModelFixture, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(registered_models.registry_root, root)
    registry = open_registry(f"file://{root}")
    registry.set_alias(MODEL_NAME, "production", "v1")
    uri = f"file://{root}/{MODEL_NAME}/production"
    server = wait_ready(launch(MODULE_ENTRY, "--model_uri", uri, tmp_path / "server.log"))
    try:
        assert _infer(server).json()["model_version"] == "v1"

        marker = tmp_path / "pickle-ran"
        evil = code_running_pickle(marker)
        (root / MODEL_NAME / "v2" / "model.joblib").write_bytes(evil)
        registry.set_alias(MODEL_NAME, "production", "v2")
        server.process.send_signal(signal.SIGHUP)

        logs = _wait_for_log(server, "reload_failed")
        assert "model.joblib does not match its card" in logs
        assert registry.card(MODEL_NAME, "v2")["model_sha256"] in logs
        assert not marker.exists()
        response = _infer(server)
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "v1"
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    finally:
        server.stop()
