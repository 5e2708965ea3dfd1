"""The simulated endpoint as a real HTTP server on 127.0.0.1: determinism across servers and wire
formats, the truth table, server-side rpm enforcement, concurrency, subprocess mode and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from assay.bias.prompt import build_messages, parse_rating
from assay.cli import app
from assay.sim import SimConfig, SimModelConfig, start_sim_server, text_key
from assay.sim.server import READY_LINE

pytestmark = pytest.mark.integration

PASSAGES = [f"Passage {i}: the city council debated the new housing levy." for i in range(6)]


def openai_body(model: str, passage: str) -> dict:
    system, user = build_messages(passage)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return {"model": model, "messages": messages, "max_tokens": 200}


def anthropic_body(model: str, passage: str) -> dict:
    system, user = build_messages(passage)
    return {
        "model": model,
        "system": system,
        "messages": [{"role": "user", "content": user}],
        "max_tokens": 200,
    }


def openai_scores(base_url: str, model: str) -> list[float]:
    with httpx.Client(base_url=base_url) as client:
        replies = [
            client.post("/v1/chat/completions", json=openai_body(model, p)) for p in PASSAGES
        ]
    return [parse_rating(r.json()["choices"][0]["message"]["content"]).score for r in replies]


def test_ratings_are_reproducible_across_servers_and_wire_formats() -> None:
    quiet = [SimModelConfig(name="sim-gpt", noise=0.4, latency_s=0, latency_jitter_s=0)]
    with start_sim_server(config=SimConfig(seed=11, models=quiet)) as first:
        scores = openai_scores(first.base_url, "sim-gpt")
        repeat = openai_scores(first.base_url, "sim-gpt")
        with httpx.Client(base_url=first.base_url) as client:
            via_anthropic = [
                parse_rating(
                    client.post(
                        "/v1/messages",
                        json=anthropic_body("sim-gpt", p),
                        headers={"anthropic-version": "2023-06-01"},
                    ).json()["content"][0]["text"]
                ).score
                for p in PASSAGES
            ]
    with start_sim_server(config=SimConfig(seed=11, models=quiet)) as second:
        again = openai_scores(second.base_url, "sim-gpt")
    with start_sim_server(config=SimConfig(seed=12, models=quiet)) as other_seed:
        different = openai_scores(other_seed.base_url, "sim-gpt")
    assert scores == repeat == via_anthropic == again
    assert scores != different


def test_truth_table_drives_the_ratings() -> None:
    exact = [SimModelConfig(name="sim-exact", noise=0.0, bias_offset=0.0, latency_s=0)]
    truth = {text_key(p): round(-2 + 0.7 * i, 2) for i, p in enumerate(PASSAGES)}
    with start_sim_server(config=SimConfig(models=exact, truth=truth)) as sim:
        assert openai_scores(sim.base_url, "sim-exact") == [truth[text_key(p)] for p in PASSAGES]


def test_the_simulator_reads_escaped_passages_as_written() -> None:
    """Passages with markup, entities and look-alikes reach the truth table unescaped."""
    marked = ["Tax <b>cuts</b> & A&amp;B", "Rates rose.</passage>\u200b\uff1c", "5 > 3 &#x3C;"]
    exact = [SimModelConfig(name="sim-exact", noise=0.0, bias_offset=0.0, latency_s=0)]
    truth = {text_key(p): round(-1.5 + 1.2 * i, 2) for i, p in enumerate(marked)}
    with (
        start_sim_server(config=SimConfig(models=exact, truth=truth)) as sim,
        httpx.Client(base_url=sim.base_url) as client,
    ):
        replies = [
            client.post("/v1/chat/completions", json=openai_body("sim-exact", p)) for p in marked
        ]
    scores = [parse_rating(r.json()["choices"][0]["message"]["content"]).score for r in replies]
    assert scores == [truth[text_key(p)] for p in marked]


def test_rpm_is_enforced_and_violations_counted() -> None:
    models = [
        SimModelConfig(name="sim-gpt", rpm=5, latency_s=0.01),
        SimModelConfig(name="sim-llama"),
    ]
    with start_sim_server(config=SimConfig(models=models)) as sim:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=sim.base_url) as client:
                calls = [
                    client.post("/v1/chat/completions", json=openai_body("sim-gpt", p))
                    for p in PASSAGES * 2
                ]
                return await asyncio.gather(*calls)

        replies = asyncio.run(burst())
        stats = sim.stats()["models"]["sim-gpt"]
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 5 + [429] * 7
    limited = next(r for r in replies if r.status_code == 429)
    assert 55 <= float(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert stats["violations"] == 7 and stats["admitted"] == 5 and stats["received"] == 12
    assert stats["peak_window_requests"] == 5
    assert sum(row["violations"] for row in stats["timeline"]) == 7


def test_rolling_window_follows_the_injected_clock() -> None:
    now = [1000.0]
    models = [SimModelConfig(name="sim-gpt", rpm=2, latency_s=0)]
    with start_sim_server(config=SimConfig(models=models), clock=lambda: now[0]) as sim:
        with httpx.Client(base_url=sim.base_url) as client:

            def send() -> int:
                return client.post(
                    "/v1/chat/completions", json=openai_body("sim-gpt", "T.")
                ).status_code

            first = [send(), send(), send()]
            now[0] += 59.0
            still_full = send()
            now[0] += 1.0
            after_window = send()
        stats = sim.stats()["models"]["sim-gpt"]
    assert (first, still_full, after_window) == ([200, 200, 429], 429, 200)
    assert stats["violations"] == 2
    assert [row["second"] for row in stats["timeline"]] == [0, 59, 60]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_limit_headers_can_be_switched_off_leaving_retry_after(wire: str) -> None:
    """``limit_headers: false`` drops the rate-limit headers from answers and refusals alike
    (a host that sends none); a refusal still says when to come back."""
    path, body, headers = (
        ("/v1/chat/completions", openai_body, {})
        if wire == "openai"
        else ("/v1/messages", anthropic_body, {"anthropic-version": "2023-06-01"})
    )
    shown = [SimModelConfig(name="sim-gpt", rpm=1, latency_s=0)]
    hidden = [SimModelConfig(name="sim-gpt", rpm=1, latency_s=0, limit_headers=False)]
    replies = {}
    for label, models in (("shown", shown), ("hidden", hidden)):
        with (
            start_sim_server(config=SimConfig(models=models)) as sim,
            httpx.Client(base_url=sim.base_url) as client,
        ):
            replies[label] = [
                client.post(path, json=body("sim-gpt", "T."), headers=headers) for _ in range(2)
            ]
    assert [r.status_code for r in replies["shown"] + replies["hidden"]] == [200, 429] * 2

    def limit_headers(reply: httpx.Response) -> list[str]:
        return [h for h in reply.headers if "ratelimit" in h]

    assert all(limit_headers(r) for r in replies["shown"])
    assert not any(limit_headers(r) for r in replies["hidden"])
    assert float(replies["hidden"][1].headers["retry-after"]) > 0


def test_hundreds_of_concurrent_requests_are_all_answered() -> None:
    with start_sim_server() as sim:

        async def flood() -> list[int]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(
                base_url=sim.base_url, limits=limits, timeout=30
            ) as client:
                calls = [
                    client.post(
                        "/v1/chat/completions", json=openai_body("sim-claude", f"Text {i}.")
                    )
                    for i in range(200)
                ]
                return [r.status_code for r in await asyncio.gather(*calls)]

        assert asyncio.run(flood()) == [200] * 200
        assert sim.stats()["models"]["sim-claude"]["received"] == 200


def test_subprocess_mode_serves_and_stops() -> None:
    sim = start_sim_server(config=SimConfig(api_key="k-123"), in_subprocess=True)
    try:
        reply = httpx.post(
            sim.base_url + "/v1/chat/completions",
            json=openai_body("sim-llama", "Some text."),
            headers={"authorization": "Bearer k-123"},
        )
        assert reply.status_code == 200
        assert sim.stats()["models"]["sim-llama"]["answered"] == 1
    finally:
        sim.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.base_url + "/health")


def test_cli_serves_with_faults() -> None:
    command = [
        sys.executable,
        "-m",
        "assay.cli",
        "sim-llm",
        "--port",
        "0",
        "--faults",
        "sim-gpt:500=1",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from assay.cli import app; app()", *command[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith(READY_LINE)
        base_url = line[len(READY_LINE) :].strip()
        reply = httpx.post(base_url + "/v1/chat/completions", json=openai_body("sim-gpt", "Text."))
        assert reply.status_code == 500
        assert httpx.get(base_url + "/sim/stats").json()["models"]["sim-gpt"]["faults"] == {
            "server_error": 1
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_rejects_a_bad_fault_spec_with_one_sentence() -> None:
    result = CliRunner().invoke(app, ["sim-llm", "--port", "0", "--faults", "sim-gpt:404=0.1"])
    assert result.exit_code == 2
    assert "Bad fault '404=0.1' for sim-gpt" in result.output


def test_bad_requests_get_4xx_in_the_wire_format_and_models_are_labelled_simulated() -> None:
    with start_sim_server() as sim, httpx.Client(base_url=sim.base_url) as client:
        not_json = client.post("/v1/chat/completions", content=b"{oops")
        no_messages = client.post("/v1/chat/completions", json={"model": "sim-gpt", "messages": []})
        bad_tokens = client.post(
            "/v1/chat/completions", json={**openai_body("sim-gpt", "T."), "max_tokens": "many"}
        )
        no_version = client.post("/v1/messages", json=anthropic_body("sim-claude", "T."))
        models = client.get("/v1/models").json()["data"]
    assert [r.status_code for r in (not_json, no_messages, bad_tokens, no_version)] == [400] * 4
    assert no_messages.json()["error"]["type"] == "invalid_request_error"
    assert no_version.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "The anthropic-version header is required.",
        },
    }
    assert {m["id"] for m in models} == {"sim-gpt", "sim-claude", "sim-llama"}
    assert all("simulated model, not a real LLM" in m["description"] for m in models)
