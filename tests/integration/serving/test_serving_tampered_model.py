"""A version changed in the registry after it was signed is never unpickled or served.

A real ``python -m assay_serving.classifier`` process serves
``<registry>/wdbc-classifier/production``
(v1), trusting the tests' signing key. The attacker, who can write the registry (as every
pipeline step's MinIO user can), changes a copy of v2 and points ``production`` at it; the
server reloads (SIGHUP). Each reload must be refused in the log, no planted pickle may run, and
inferences keep answering from v1. The attacks: a pickle swapped in; a card edited to threshold
1.0 (every patient benign); a pickle swapped in with the card's digest recomputed; a pickle
swapped in with the signature and the card's digest and registration stripped.
"""

from __future__ import annotations

import hashlib
import json
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


def _swap_pickle(folder: Path, marker: Path) -> None:
    (folder / "model.joblib").write_bytes(code_running_pickle(marker))


def _edit_card(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model-card.json").read_text())
    card.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del card[key]
    (folder / "model-card.json").write_text(json.dumps(card))


def _threshold_one(folder: Path, marker: Path) -> None:
    _edit_card(folder, threshold=1.0)


def _pickle_with_recomputed_digest(folder: Path, marker: Path) -> None:
    _swap_pickle(folder, marker)
    evil = (folder / "model.joblib").read_bytes()
    _edit_card(folder, model_sha256=hashlib.sha256(evil).hexdigest(), model_size=len(evil))


def _pickle_unsigned_and_stripped(folder: Path, marker: Path) -> None:
    _swap_pickle(folder, marker)
    (folder / "signature.json").unlink()
    _edit_card(folder, model_sha256=None, model_size=None, registered_at=None)


ATTACKS = {
    "v3": (_swap_pickle, "changed after it was signed"),
    "v4": (_threshold_one, "changed after it was signed"),
    "v5": (_pickle_with_recomputed_digest, "changed after it was signed"),
    "v6": (_pickle_unsigned_and_stripped, "unsigned"),
}


def test_changed_versions_are_refused_on_reload_and_v1_keeps_serving(
    registered_models: ModelFixture, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(registered_models.registry_root, root)
    registry = open_registry(f"file://{root}")
    registry.set_alias(MODEL_NAME, "production", "v1")
    marker = tmp_path / "pickle-ran"
    for version, (attack, _message) in ATTACKS.items():
        folder = shutil.copytree(root / MODEL_NAME / "v2", root / MODEL_NAME / version)
        attack(folder, marker)
    uri = f"file://{root}/{MODEL_NAME}/production"
    server = wait_ready(launch(MODULE_ENTRY, "--model_uri", uri, tmp_path / "server.log"))
    try:
        assert _infer(server).json()["model_version"] == "v1"
        for count, (version, (_attack, message)) in enumerate(ATTACKS.items(), start=1):
            registry.set_alias(MODEL_NAME, "production", version)
            server.process.send_signal(signal.SIGHUP)
            logs = _wait_for_log_count(server, "reload_failed", count)
            failures = [line for line in logs.splitlines() if "reload_failed" in line]
            assert message in failures[count - 1], version
            assert not marker.exists(), f"{version}: the planted pickle ran"
            response = _infer(server)
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == "v1"
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    finally:
        server.stop()


def _wait_for_log_count(server: RunningServer, text: str, count: int) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.logs().count(text) >= count:
            return server.logs()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} did not appear {count} times:\n{server.logs()}")
