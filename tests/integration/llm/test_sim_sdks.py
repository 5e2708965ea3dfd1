"""The real openai, anthropic and together SDKs, through assay's adapters, against the simulated
endpoint on 127.0.0.1: success, each injected fault, and its translation into assay.llm.errors.

Each fault is forced by a dedicated simulated model whose fault probability is 1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from assay.bias.prompt import build_messages, parse_rating
from assay.llm.errors import (
    AuthenticationError,
    BadRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseParseError,
    ServerError,
)
from assay.llm.providers import get_provider
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.sim import FaultRates, SimConfig, SimModelConfig, start_sim_server
from assay.sim.server import SimServer

pytestmark = pytest.mark.integration

KEY = "sim-test-key-0123456789"
KINDS = ["openai", "anthropic", "together"]
PASSAGE = "The new budget finally puts hard-working families ahead of bureaucrats."


def _model(name: str, **faults: float) -> SimModelConfig:
    return SimModelConfig(
        name=name,
        latency_s=0.0,
        latency_jitter_s=0.0,
        retry_after_s=2.5,
        faults=FaultRates(**faults),
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    config = SimConfig(
        seed=7,
        api_key=KEY,
        timeout_delay_s=1.5,
        models=[
            _model("sim-ok"),
            _model("sim-429", rate_limit=1.0),
            _model("sim-500", server_error=1.0),
            _model("sim-503", unavailable=1.0),
            _model("sim-timeout", timeout=1.0),
            _model("sim-malformed", malformed=1.0),
            _model("sim-badjson", bad_body=1.0),
        ],
    )
    with start_sim_server(config=config) as server:
        yield server


def call(
    sim: SimServer | str, kind: str, model: str, key: str = KEY, timeout_s: float = 5.0
) -> Any:
    """One rating request through the adapter of ``kind`` (``sim`` may be a plain base URL)."""
    base_url = sim if isinstance(sim, str) else sim.base_url_for(kind)

    async def run() -> CompletionResponse:
        provider = get_provider(kind, base_url=base_url, api_key=key, timeout_s=timeout_s)
        try:
            system, user = build_messages(PASSAGE)
            return await provider.complete(
                CompletionRequest(model=model, prompt=user, system=system)
            )
        finally:
            await provider.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("kind", KINDS)
def test_success_returns_a_parsable_rating_with_usage(sim: SimServer, kind: str) -> None:
    response = call(sim, kind, "sim-ok")
    rating = parse_rating(response.text)
    assert -2 <= rating.score <= 2 and "simulated" in rating.explanation
    assert response.model == "sim-ok" and response.finish_reason == "stop"
    assert response.input_tokens > 50 and response.output_tokens > 10
    assert response.latency_s > 0
    assert response.headers["x-assay-simulated"] == "true"


@pytest.mark.parametrize("kind", KINDS)
def test_injected_429_carries_retry_after(sim: SimServer, kind: str) -> None:
    with pytest.raises(RateLimitError) as caught:
        call(sim, kind, "sim-429")
    assert caught.value.retry_after_s == 2.5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", ["sim-500", "sim-503", "sim-badjson"])
def test_server_faults_are_retryable_server_errors(sim: SimServer, kind: str, model: str) -> None:
    with pytest.raises(ServerError) as caught:
        call(sim, kind, model)
    assert caught.value.retryable


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_answer_is_a_provider_timeout(sim: SimServer, kind: str) -> None:
    with pytest.raises(ProviderTimeoutError):
        call(sim, kind, "sim-timeout", timeout_s=0.3)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_key_is_an_auth_error_without_the_key(sim: SimServer, kind: str) -> None:
    wrong = "wrong-key-ABCDEF987654"
    with pytest.raises(AuthenticationError) as caught:
        call(sim, kind, "sim-ok", key=wrong)
    assert not caught.value.retryable
    assert wrong not in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_model_is_a_bad_request(sim: SimServer, kind: str) -> None:
    with pytest.raises(BadRequestError, match="404"):
        call(sim, kind, "gpt-4o")


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_answer_fails_strict_parsing(sim: SimServer, kind: str) -> None:
    response = call(sim, kind, "sim-malformed")
    with pytest.raises(ResponseParseError, match="rating answer rejected"):
        parse_rating(response.text)


def test_connection_refused_is_a_connection_error() -> None:
    from assay.sim.server import bind_socket

    sock = bind_socket(0)
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ProviderConnectionError):
        call(f"http://127.0.0.1:{port}/v1", "openai", "sim-ok")


def test_server_counts_requests_statuses_and_faults(sim: SimServer) -> None:
    sim.reset_stats()
    for model in ("sim-ok", "sim-429", "sim-500", "sim-badjson"):
        with contextlib.suppress(RateLimitError, ServerError):
            call(sim, "openai", model)
    models = sim.stats()["models"]
    assert models["sim-ok"]["answered"] == 1 and models["sim-ok"]["statuses"] == {"200": 1}
    assert models["sim-429"]["faults"] == {"rate_limit": 1}
    assert models["sim-429"]["statuses"] == {"429": 1}
    assert models["sim-500"]["statuses"] == {"500": 1}
    assert models["sim-badjson"]["faults"] == {"bad_body": 1}
    assert models["sim-503"]["received"] == 0
