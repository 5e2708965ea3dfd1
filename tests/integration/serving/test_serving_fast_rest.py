"""The lean REST route (:mod:`assay.serving.fast_infer`) answers exactly as KServe's route.

Two real servers on the same ranged model: the shared ``hardened`` server (lean route on, the
default) and one started here with ``--no-fast-rest`` (every request through KServe's FastAPI
route, as before the lean route existed). Each body below -- valid ones and one for each way a
request can be refused -- goes to both; status, response bytes and the error/prediction counters
they add to ``/metrics`` must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _serving_support import (
    MAX_REQUEST_BYTES,
    MODEL_NAME,
    MODULE_ENTRY,
    RunningServer,
    launch,
    wait_ready,
    wdbc,
)

X = wdbc()[0]
ROW = [float(v) for v in X[0]]
JSON = {"content-type": "application/json", "x-request-id": "fixed-id"}


def tensor(**overrides: object) -> dict[str, object]:
    return {"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": ROW, **overrides}


def body(*inputs: dict[str, object], **fields: object) -> bytes:
    return json.dumps({"inputs": list(inputs or [tensor()]), **fields}).encode()


CASES: dict[str, tuple[bytes, dict[str, str]]] = {
    "one row": (body(), JSON),
    "three rows FP32, an id": (
        body(
            tensor(shape=[3, 30], datatype="FP32", data=[float(v) for v in X[:3].ravel()]),
            id="r-1",
        ),
        JSON,
    ),
    "requested outputs": (body(outputs=[{"name": "predict"}, {"name": "confidence"}]), JSON),
    "integer data": (body(tensor(datatype="INT64", data=[int(v) for v in ROW])), JSON),
    "no content type": (body(), {"x-request-id": "fixed-id"}),
    "charset parameter": (body(), {**JSON, "content-type": "application/json; charset=utf-8"}),
    "wrong datatype": (body(tensor(datatype="BYTES")), JSON),
    "FP16 data": (body(tensor(datatype="FP16")), JSON),
    "wrong feature count": (body(tensor(shape=[1, 29], data=ROW[:29])), JSON),
    "3-d shape": (body(tensor(shape=[1, 30, 1])), JSON),
    "negative rows": (body(tensor(shape=[-1, 30])), JSON),
    "empty batch": (body(tensor(shape=[0, 30], data=[])), JSON),
    "too many rows": (body(tensor(shape=[513, 30], data=[])), JSON),
    "too few values": (body(tensor(data=ROW[:5])), JSON),
    "nested data": (body(tensor(data=[ROW])), JSON),
    "non-numeric values": (body(tensor(data=["x"] * 30)), JSON),
    "NaN literal": (body().replace(str(ROW[0]).encode(), b"NaN", 1), JSON),
    "far out of range": (body(tensor(data=[1e9] * 30)), JSON),
    "unknown input name": (body(tensor(name="x")), JSON),
    "two inputs": (body(tensor(), tensor()), JSON),
    "no inputs": (body(tensor())[:0] + b'{"inputs": []}', JSON),
    "unknown output": (body(outputs=[{"name": "zz"}]), JSON),
    "outputs not a list": (body(outputs={"name": "predict"}), JSON),
    "output parameters": (body(outputs=[{"name": "predict", "parameters": {"x": 1}}]), JSON),
    "request parameters": (body(parameters={"x": 1}), JSON),
    "input parameters": (body(tensor(parameters={"x": 1})), JSON),
    "numeric id": (body(id=5), JSON),
    "shape of strings": (body(tensor(shape=["1", "30"])), JSON),
    "data not a list": (body(tensor(data=1.0)), JSON),
    "inputs not a list": (b'{"inputs": "x"}', JSON),
    "top-level list": (b"[1, 2]", JSON),
    "malformed JSON": (b'{"inputs": [', JSON),
    "empty body": (b"", JSON),
    "not UTF-8": (body().replace(b"input-0", b"input-\xff"), JSON),
    "text/json content type": (body(), {**JSON, "content-type": "text/json"}),
    "binary header": (body(), {**JSON, "inference-header-content-length": "5"}),
    "cloudevent content type": (body(), {**JSON, "content-type": "application/cloudevents+json"}),
    "too large": (b" " * (MAX_REQUEST_BYTES + 1) + body(), JSON),
}


@pytest.fixture(scope="module")
def kserve_route(hardened: RunningServer, tmp_path: Path) -> Iterator[RunningServer]:
    """The hardened server's twin with the lean route off."""
    model = hardened.model_uri
    log = tmp_path / "no-fast-rest.log"
    extra = ["--no-fast-rest", f"--max-request-bytes={MAX_REQUEST_BYTES}"]
    server = launch(MODULE_ENTRY, "--model_uri", model, log, *extra)
    try:
        yield wait_ready(server, timeout_s=300)  # its start-up may queue behind the others'
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-rest")


def counters(server: RunningServer) -> dict[str, float]:
    """The request-counting series of ``/metrics`` (errors by reason, predictions by label,
    KServe's stage histograms' counts, the latency histogram's count)."""
    wanted = (
        "inference_errors_total",
        "predictions_total",
        "prediction_latency_seconds_count",
        "request_preprocess_seconds_count",
        "request_predict_seconds_count",
        "request_postprocess_seconds_count",
    )
    text = httpx.get(f"{server.url}/metrics").text
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith(wanted)
    }


def answer(server: RunningServer, case: str, path: str = "infer") -> tuple[int, bytes]:
    """Status and body; a CloudEvent's own random ``id`` and ``time`` are left out."""
    content, headers = CASES[case]
    url = f"{server.url}/v2/models/{MODEL_NAME}/{path}"
    response = httpx.post(url, content=content, headers=headers)
    if response.content.startswith(b'{"specversion"'):
        event = {k: v for k, v in response.json().items() if k not in ("id", "time")}
        return response.status_code, json.dumps(event).encode()
    return response.status_code, response.content


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if value != before.get(key, 0.0)
    }


@pytest.mark.parametrize("case", list(CASES))
def test_each_body_gets_the_same_answer_and_counters_on_both_routes(
    case: str, hardened: RunningServer, kserve_route: RunningServer
) -> None:
    before = {server.url: counters(server) for server in (hardened, kserve_route)}
    fast, kserve = answer(hardened, case), answer(kserve_route, case)
    assert fast == kserve
    changes = [delta(counters(s), before[s.url]) for s in (hardened, kserve_route)]
    assert changes[0] == changes[1]


def test_the_valid_bodies_are_answered_with_predictions(hardened: RunningServer) -> None:
    status, content = answer(hardened, "three rows FP32, an id")
    assert status == 200
    outputs = {output["name"]: output for output in json.loads(content)["outputs"]}
    assert outputs["predict"]["shape"] == [3]
    assert json.loads(content)["id"] == "r-1"


def test_an_unknown_model_is_a_404_on_both_routes(
    hardened: RunningServer, kserve_route: RunningServer
) -> None:
    answers = [
        httpx.post(f"{s.url}/v2/models/nope/infer", content=body(), headers=JSON)
        for s in (hardened, kserve_route)
    ]
    assert answers[0].status_code == answers[1].status_code == 404
    assert answers[0].content == answers[1].content
