"""Attack: the simulated LLM endpoint (``assay sim-llm``, the dev overlay's pod with 384 Mi) sent
bodies far over any rating prompt, and JSON nested 100,000 deep. A real server on 127.0.0.1;
raw sockets, so the test controls the headers and the streaming."""

from __future__ import annotations

import httpx
import pytest
from _hostile import raw_post

from assay.sim import SimConfig, start_sim_server

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def sim():
    with start_sim_server(port=0, config=SimConfig(max_body_bytes=LIMIT)) as server:
        yield server


def exchange(port: int, head: list[str], chunks: list[bytes]) -> tuple[int, str]:
    return raw_post(port, "/v1/chat/completions", head, chunks)


def test_declared_huge_body_is_refused_before_it_is_read(sim) -> None:
    """Only the head of a 300 MB request: a server waiting for the body never answers."""
    head = ["Content-Type: application/json", "Content-Length: 300000000"]
    status, text = exchange(sim.port, head, [])
    assert status == 413, text
    assert f"{LIMIT} bytes" in text


def test_streamed_body_over_the_limit_is_refused(sim) -> None:
    body = b'{"model": "sim-gpt", "pad": "' + b"a" * (2 * LIMIT) + b'"}'
    parts = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    chunks = [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]
    head = ["Content-Type: application/json", "Transfer-Encoding: chunked"]
    status, text = exchange(sim.port, head, chunks)
    assert status == 413, text


def test_deeply_nested_json_is_a_400_with_a_message(sim) -> None:
    response = httpx.post(
        f"{sim.base_url}/v1/chat/completions",
        content=b"[" * 60_000,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "nests JSON too deeply" in response.text
    ok = httpx.post(
        f"{sim.base_url}/v1/chat/completions",
        json={"model": "sim-gpt", "messages": [{"role": "user", "content": "A calm day."}]},
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
