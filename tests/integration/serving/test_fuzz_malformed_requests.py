"""Fuzz: 1,000+ seeded malformed requests per server (mutated JSON and binary-extension bodies),
sent to the real classifier and bias scorer on 127.0.0.1. None may get an answer >= 500, and a
valid request succeeds afterwards (the server is still serving)."""

from __future__ import annotations

from collections import Counter

import httpx
import numpy as np
import pytest
from _bias_scorer_support import MODEL as SCORER
from _fuzz_support import RequestFuzzer
from _serving_support import MODEL_NAME, wdbc

pytestmark = pytest.mark.integration

N_JSON, N_BINARY = 600, 450
SEED = 14


def classifier_request() -> dict:
    rows = np.round(wdbc()[0][:2], 3)
    tensor = {
        "name": "input-0",
        "shape": [2, 30],
        "datatype": "FP32",
        "data": rows.ravel().tolist(),
    }
    return {"id": "fuzz", "inputs": [tensor], "outputs": [{"name": "predict"}]}


def scorer_request() -> dict:
    texts = ["The council met today.", "Rain is expected."]
    return {
        "inputs": [
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": texts},
            {"name": "publisher", "shape": [2], "datatype": "BYTES", "data": ["A", "B"]},
        ]
    }


def fuzz(url: str, valid: dict) -> tuple[Counter[int], list[str]]:
    """Send every malformed request; (status counts, the answers >= 500 and dropped ones)."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    client = httpx.Client(timeout=60)
    for index, request in enumerate(RequestFuzzer(valid, SEED).requests(N_JSON, N_BINARY)):
        try:
            response = client.post(url, content=request.body, headers=request.headers)
        except httpx.TransportError as exc:  # the server dropped the connection: a failure too
            failures.append(f"#{index} {request.kind} {exc!r}")
            client.close()
            client = httpx.Client(timeout=60)
            continue
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"#{index} {request.kind} {response.status_code} {response.text[:200]}")
    client.close()
    return statuses, failures


def test_fuzzed_requests_never_get_a_5xx_from_the_classifier(server) -> None:
    url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    statuses, failures = fuzz(url, classifier_request())
    assert sum(statuses.values()) >= 1000
    assert failures == [], f"{len(failures)} answers >= 500 or dropped: {failures[:10]}"
    assert sum(count for status, count in statuses.items() if 400 <= status < 500) > 900
    response = httpx.post(url, json=classifier_request(), timeout=30)
    assert response.status_code == 200, response.text


def test_fuzzed_requests_never_get_a_5xx_from_the_bias_scorer(hardened_scorer) -> None:
    url = f"{hardened_scorer.url}/v2/models/{SCORER}/infer"
    statuses, failures = fuzz(url, scorer_request())
    assert sum(statuses.values()) >= 1000
    assert failures == [], f"{len(failures)} answers >= 500 or dropped: {failures[:10]}"
    response = httpx.post(url, json=scorer_request(), timeout=60)
    assert response.status_code == 200, response.text
