"""Attacks on the bias scorer's providers and spend, against real ``python -m
assay_serving.bias_scorer`` processes on 127.0.0.1 rating through real simulated endpoints whose
latency is set in their config (``latency_s``, no jitter):

- slow raters try to hold a request past the gateway's timeout -> the request deadline answers
  "timeout" for them, on time, with coarse reasons only (no exception text, no URLs);
- a flood of concurrent requests tries to queue unbounded work -> 429 with Retry-After (gRPC:
  RESOURCE_EXHAUSTED with retry-after and google.rpc.RetryInfo);
- a client that hangs up tries to leave provider calls running -> they are cancelled;
- an enormous passage tries to spend a rater's whole context -> 400 (token cap).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _bias_scorer_support import Scorer, launch, outputs_of, received, text_tensor, write_ensemble

pytestmark = pytest.mark.integration

SLOW_S = 3.0
GIVE_UP_S = 60.0


def sim_config(latency_s: float) -> Any:
    from assay.sim import SimConfig
    from assay.sim.config import default_models

    update = {"refusal_rate": 0.0, "latency_s": latency_s, "latency_jitter_s": 0.0}
    return SimConfig(models=[m.model_copy(update=update) for m in default_models()])


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Any]]:
    from assay.sim import start_sim_server

    slow = start_sim_server(port=0, config=sim_config(SLOW_S))
    fast = start_sim_server(port=0, config=sim_config(0.0))
    try:
        yield {"slow": slow, "fast": fast}
    finally:
        slow.stop()
        with contextlib.suppress(Exception):  # a test stops it on purpose
            fast.stop()


def start_scorer(folder: Path, urls: dict[str, str], *args: str) -> Scorer:
    ensemble = write_ensemble(folder / "ensemble.yaml", urls, max_attempts=1)
    common = [f"--ensemble={ensemble}", "--enable_grpc=false", "--rater_deadline_s=30"]
    return launch("module", [*common, *args], folder / "server.log").wait_ready()


@pytest.fixture(scope="module")
def deadline_scorer(
    sims: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scorer]:
    """sim-gpt is slow (3 s), sim-llama fast; every request has 1 s."""
    urls = {"sim-gpt": sims["slow"].base_url, "sim-llama": sims["fast"].base_url}
    folder = tmp_path_factory.mktemp("scorer-deadline")
    server = start_scorer(folder, urls, "--request_deadline_s=1", "--max_passage_tokens=500")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def queue_scorer(
    sims: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scorer]:
    """One slow rater, one passage at a time, room for one passage in progress; gRPC on."""
    folder = tmp_path_factory.mktemp("scorer-queue")
    args = ["--request_deadline_s=100", "--max_queued_passages=1", "--max_concurrency=1"]
    args.append("--enable_grpc=true")
    server = start_scorer(folder, {"sim-gpt": sims["slow"].base_url}, *args)
    try:
        yield server
    finally:
        server.stop()


def gpt_calls(sim: Any) -> int:
    return received(sim.stats()).get("sim-gpt", 0)


def wait_until(condition: Any, what: str) -> None:
    give_up = time.monotonic() + GIVE_UP_S
    while not condition():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        time.sleep(0.02)


def hold_the_slot(
    scorer: Scorer, sims: dict[str, Any], text: str
) -> tuple[threading.Thread, dict[str, httpx.Response]]:
    """A REST request rating ``text`` (a passage no other test sends: not cached) in a thread,
    returned once its slow provider call is under way; its response lands in ``["ok"]``."""
    before = gpt_calls(sims["slow"])
    first: dict[str, httpx.Response] = {}
    in_flight = threading.Thread(target=lambda: first.update(ok=scorer.infer([text])))
    in_flight.start()
    wait_until(lambda: gpt_calls(sims["slow"]) > before or "ok" in first, "the first call")
    assert "ok" not in first, first["ok"].text  # in progress, holding the slot
    return in_flight, first


def assert_coarse(text: str) -> None:
    for leak in ("127.0.0.1", "http", "Error", "Traceback", "within"):
        assert leak not in text, f"{leak!r} leaked into {text!r}"


def test_slow_rater_cannot_hold_the_request_past_its_deadline(deadline_scorer: Scorer) -> None:
    response = deadline_scorer.infer(["The council met on a slow Tuesday."])
    assert response.status_code == 200, response.text
    outputs = outputs_of(response)
    assert outputs["missing_raters"] == ["sim-gpt"]
    assert outputs["score_sim-llama"][0] is not None
    assert response.json()["parameters"]["missing_reasons"] == "sim-gpt: timeout"


def test_all_raters_past_the_deadline_is_a_503_with_coarse_reasons(
    deadline_scorer: Scorer, sims: dict[str, Any]
) -> None:
    """sim-gpt is slow and sim-llama's endpoint is stopped: nobody rates; the 503 says why in
    coarse words only."""
    slow_only = {"inputs": [text_tensor(["Slow one.", "Slow two."])]}
    sims["fast"].stop()  # sim-llama now fails fast (connection refused), sim-gpt is slow
    response = httpx.post(deadline_scorer.infer_url, json=slow_only, timeout=GIVE_UP_S)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error.startswith("no rater could rate the passages: ")
    assert "sim-gpt (timeout)" in error
    assert "sim-llama (unavailable (connection))" in error
    assert_coarse(error.removeprefix("no rater could rate the passages: "))
    assert "connection" in deadline_scorer.logs()  # the details are in the server log


@pytest.mark.parametrize(
    ("passage", "message"),
    [
        # over the cap in UTF-8 bytes alone: refused on the body's bytes, before the v2 parse
        ("Many words. " * 400, "a string of 4,800 UTF-8 bytes, more than this server takes (500"),
        # 500 bytes, under the cap alone but over it with the prompt's framing: the token check
        ("x" * 500, "more than the limit of 500"),
    ],
    ids=["bytes", "with-framing"],
)
def test_passage_over_the_token_cap_is_refused_before_any_call(
    deadline_scorer: Scorer, sims: dict[str, Any], passage: str, message: str
) -> None:
    before = gpt_calls(sims["slow"])
    response = deadline_scorer.infer([passage])
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert gpt_calls(sims["slow"]) == before


def test_flood_of_concurrent_requests_gets_429_with_retry_after(
    queue_scorer: Scorer, sims: dict[str, Any]
) -> None:
    before = gpt_calls(sims["slow"])
    in_flight, first = hold_the_slot(queue_scorer, sims, "The first passage, admitted.")
    refused = queue_scorer.infer(["A second passage, over capacity."])
    in_flight.join(GIVE_UP_S)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "busy" in refused.json()["error"]
    assert first["ok"].status_code == 200
    assert gpt_calls(sims["slow"]) == before + 1  # the refused request cost nothing


def test_client_that_hangs_up_leaves_no_provider_calls_running(
    queue_scorer: Scorer, sims: dict[str, Any]
) -> None:
    """Three passages, one slot: a client gone during the first call cancels all three."""
    before = gpt_calls(sims["slow"])
    body = httpx.Request(
        "POST",
        queue_scorer.infer_url,
        json={"inputs": [text_tensor(["Gone one.", "Gone two.", "Gone three."])]},
    )
    with socket.create_connection(("127.0.0.1", queue_scorer.http_port)) as client:
        head = f"POST {body.url.raw_path.decode()} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.content)}\r\n\r\n"
        client.sendall(head.encode() + body.content)
        wait_until(lambda: gpt_calls(sims["slow"]) > before, "the first passage's call")
    wait_until(lambda: "client_disconnected" in queue_scorer.logs(), "the cancellation")
    after = queue_scorer.infer(["A later client's passage."])
    assert after.status_code == 200, after.text
    assert gpt_calls(sims["slow"]) == before + 2  # the gone client's first call, and this one


def test_flood_over_grpc_gets_resource_exhausted_with_retry_info(
    queue_scorer: Scorer, sims: dict[str, Any]
) -> None:
    """KServe's own generated stubs, in this process; REST holds the one slot meanwhile."""
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    before = gpt_calls(sims["slow"])
    in_flight, first = hold_the_slot(queue_scorer, sims, "A first passage for gRPC, admitted.")
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[b"A second gRPC passage, refused."]),
    )
    request = pb.ModelInferRequest(model_name="bias-scorer", inputs=[tensor])
    with grpc.insecure_channel(queue_scorer.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(request, timeout=GIVE_UP_S)
    in_flight.join(GIVE_UP_S)
    error = refused.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert "busy" in error.details()
    trailing = dict(error.trailing_metadata())
    assert int(trailing["retry-after"]) > 0
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds == int(trailing["retry-after"])
    assert first["ok"].status_code == 200
    assert gpt_calls(sims["slow"]) == before + 1
