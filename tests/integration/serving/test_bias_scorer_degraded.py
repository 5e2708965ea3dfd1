"""The bias scorer keeps answering when raters go down, and says 503 only when all are down.

A real ``python -m assay_serving.bias_scorer`` process rates with three simulated raters:
sim-gpt and
sim-llama on a healthy simulated endpoint, sim-claude on a second one that answers every request
with 503 (the simulator's fault injection). The tests then stop the healthy endpoint, so every
rater is down. Retries and breakers are tuned small in the ensemble file so failures are quick.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from _bias_scorer_support import (
    MODEL,
    Scorer,
    launch,
    metric_value,
    outputs_of,
    received,
    write_ensemble,
)

pytestmark = pytest.mark.integration

RESILIENCE = {
    "max_attempts": 2,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.1,
    "breaker_failures": 2,
    "breaker_cooldown_s": 120,
}


def no_refusals() -> Any:
    from assay.sim import SimConfig
    from assay.sim.config import default_models

    models = [m.model_copy(update={"refusal_rate": 0.0}) for m in default_models()]
    return SimConfig(models=models)


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Any]]:
    from assay.sim import start_sim_server

    healthy = start_sim_server(port=0, config=no_refusals())
    failing = start_sim_server(port=0, config=no_refusals().with_faults("sim-claude:503=1"))
    try:
        yield {"healthy": healthy, "failing": failing}
    finally:
        failing.stop()
        with contextlib.suppress(Exception):  # the last test stops it on purpose
            healthy.stop()


@pytest.fixture(scope="module")
def scorer(sims: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scorer]:
    folder = tmp_path_factory.mktemp("bias-scorer-degraded")
    healthy, failing = sims["healthy"].base_url, sims["failing"].base_url
    urls = {"sim-gpt": healthy, "sim-claude": failing, "sim-llama": healthy}
    ensemble = write_ensemble(folder / "ensemble.yaml", urls, **RESILIENCE)
    args = [f"--ensemble={ensemble}", "--rater_deadline_s=10", "--enable_grpc=false"]
    server = launch("module", args, folder / "server.log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_one_rater_down_the_others_still_answer(scorer: Scorer) -> None:
    client = triton_http.InferenceServerClient(f"127.0.0.1:{scorer.http_port}")
    tensor = triton_http.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(np.array(["The port reopened on Monday.", "Taxes rose."], object))
    result = client.infer(MODEL, [tensor])
    assert result.as_numpy("n_ratings").tolist() == [2, 2]
    assert [m.decode() for m in result.as_numpy("missing_raters")] == ["sim-claude"] * 2
    claude = result.as_numpy("score_sim-claude")
    assert np.isnan(claude).all()  # it did not answer
    gpt, llama = result.as_numpy("score_sim-gpt"), result.as_numpy("score_sim-llama")
    assert list(result.as_numpy("bias_score")) == pytest.approx(list((gpt + llama) / 2), abs=1e-5)
    parameters = result.get_response()["parameters"]
    assert parameters["missing_raters"] == "sim-claude"
    assert "sim-claude: " in parameters["missing_reasons"]
    metrics = scorer.metrics()
    assert metric_value(metrics, "bias_rater_unavailable_total", rater="sim-claude") >= 2
    assert metric_value(metrics, "bias_rater_unavailable_total", rater="sim-gpt") == 0
    assert metric_value(metrics, "llm_errors_total", rater="sim-claude") >= 2


def test_an_open_breaker_skips_the_rater_without_calling_it(
    scorer: Scorer, sims: dict[str, Any]
) -> None:
    """After the failures above, sim-claude's breaker is open: no calls, no waiting."""
    before = received(sims["failing"].stats())["sim-claude"]
    start = time.monotonic()
    response = scorer.infer(["A fresh passage on school lunches."])
    elapsed = time.monotonic() - start
    assert response.status_code == 200, response.text
    assert outputs_of(response)["missing_raters"] == ["sim-claude"]
    assert outputs_of(response)["score_sim-claude"] == [None]  # NaN is JSON null
    assert "circuit_open" in response.json()["parameters"]["missing_reasons"]
    assert received(sims["failing"].stats())["sim-claude"] == before
    assert elapsed < 5
    assert metric_value(scorer.metrics(), "llm_breaker_state", rater="sim-claude") == 2


def test_all_raters_down_is_a_503_with_a_message(scorer: Scorer, sims: dict[str, Any]) -> None:
    sims["healthy"].stop()
    response = scorer.infer(["Nobody is left to rate this passage."])
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error.startswith("no rater could rate the passages")
    assert all(rater in error for rater in ("sim-gpt", "sim-claude", "sim-llama"))
    metrics = scorer.metrics()
    assert metric_value(metrics, "inference_errors_total", reason="no_rater_answered") == 1
    assert metric_value(metrics, "bias_rater_unavailable_total", rater="sim-gpt") == 1
    assert httpx.get(f"{scorer.url}/v2/health/live", timeout=5).json() == {"live": True}
