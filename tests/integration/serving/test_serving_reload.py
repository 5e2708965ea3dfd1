"""Moving the ``production`` alias is picked up without a restart, with zero failed requests.

A real server serves ``<registry>/wdbc-classifier/production`` while client threads send
requests; the alias moves and the server is told to reload, once through the v2 repository
``load`` endpoint and once through SIGHUP.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest
from _serving_support import MODEL_NAME, sign_folder, wdbc

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Load:
    """Client threads that send small batches until stopped, recording versions and failures."""

    def __init__(self, url: str, threads: int = 4) -> None:
        rows = wdbc()[0][:8]
        self.body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [8, 30],
                    "datatype": "FP64",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
        self.url = f"{url}/v2/models/{MODEL_NAME}/infer"
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.last_version = ""
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json=self.body)
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text}")
                        continue
                    version = response.json()["model_version"]
                    self.versions[version] += 1
                    self.last_version = version
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def wait_for(self, version: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.last_version == version and self.versions[version] >= 20:
                return
            time.sleep(0.05)
        raise AssertionError(
            f"never served {version}: {self.versions}, failures {self.failures[:3]}"
        )


def test_alias_move_is_served_without_restart_or_failures(
    server, served_registry, registered_models
) -> None:
    from assay.registry import open_registry

    root = served_registry
    registry = open_registry(f"file://{root}")
    with Load(server.url) as load:
        load.wait_for("v1")
        registry.set_alias(MODEL_NAME, "production", "v2")
        response = httpx.post(
            f"{server.url}/v2/repository/models/{MODEL_NAME}/load",
            headers=server.admin_headers,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        load.wait_for("v2")

        registry.set_alias(MODEL_NAME, "production", "v1")
        server.process.send_signal(signal.SIGHUP)
        load.wait_for("v1")
    assert load.failures == []
    assert load.versions["v1"] > 0 and load.versions["v2"] > 0

    # the swap also moved model_info and the threshold used for `predict`
    metrics = httpx.get(f"{server.url}/metrics").text
    info = 'model_info{estimator="adaboost",model="wdbc-classifier",threshold="0.3",'
    assert info + 'version="v1"} 1.0' in metrics
    assert 'version="v2"} 1.0' not in metrics.split("model_info")[-1]
    X = wdbc()[0][:50]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [50, 30],
                "datatype": "FP64",
                "data": X.ravel().tolist(),
            }
        ]
    }
    out = httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=body).json()["outputs"]
    proba = registered_models.pipeline("v1").predict_proba(X)[:, 1]
    np.testing.assert_array_equal(out[0]["data"], (proba >= 0.3).astype(int))
    assert "model_loaded" in server.logs()

    # a broken new version is refused and the old one keeps serving
    card = root / MODEL_NAME / "v2" / "model-card.json"
    card.write_text(
        card.read_text().replace('"positive_class": "malignant"', '"positive_class": "benign"')
    )
    sign_folder(card.parent, "v2")  # signed, so that it is the card's content that is refused
    registry.set_alias(MODEL_NAME, "production", "v2")
    response = httpx.post(
        f"{server.url}/v2/repository/models/{MODEL_NAME}/load",
        headers=server.admin_headers,
        timeout=60,
    )
    assert (
        response.status_code == 503
        and "positive class must be 'malignant'" in response.json()["error"]
    )
    response = httpx.post(f"{server.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == 200 and response.json()["model_version"] == "v1"
    card.write_text(
        card.read_text().replace('"positive_class": "benign"', '"positive_class": "malignant"')
    )
    sign_folder(card.parent, "v2")
    registry.set_alias(MODEL_NAME, "production", "v1")
