"""Attack: an ensemble endpoint with a custom ``base_url`` and no ``api_key_env`` tries to make
assay send the provider's real key (``OPENAI_API_KEY`` ...) to a URL of the attacker's choosing.

Nothing is mocked: the real openai, anthropic and together SDK clients rate a passage through
the real rating stack against a capture HTTP server on 127.0.0.1 that records every header of
every request (and answers 400, so each rater fails fast after one call).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from assay.bias.rating.scorer import EnsembleRuntime, score_passage
from assay.llm.ensemble import bundled_ensemble_path, load_ensemble

pytestmark = pytest.mark.integration

SENTINELS = {
    "OPENAI_API_KEY": "sk-sentinel-openai-0001",
    "ANTHROPIC_API_KEY": "sk-ant-sentinel-0002",
    "TOGETHER_API_KEY": "sentinel-together-0003",
}
PROVIDERS = {"leak-gpt": "openai", "leak-claude": "anthropic", "leak-llama": "together"}


class Capture(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CaptureHandler)
        self.headers_seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CaptureHandler(BaseHTTPRequestHandler):
    server: Capture

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.headers_seen.append(dict(self.headers.items()))
        body = json.dumps({"error": {"type": "invalid_request_error", "message": "captured"}})
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def real_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)


def custom_url_ensemble(path: Path, root: str) -> Path:
    raters = {
        name: {
            "provider": kind,
            "model": name,
            "endpoints": [{"base_url": f"{root}/v1" if kind == "openai" else root}],
            "rpm": 6000,
            "timeout_s": 5,
        }
        for name, kind in PROVIDERS.items()
    }
    spec = {"name": "leak", "raters": raters, "resilience": {"max_attempts": 1}}
    path.write_text(yaml.safe_dump(spec))
    return path


async def rate_once(ensemble_path: Path, environ: dict[str, str]) -> None:
    ensemble = load_ensemble(str(ensemble_path), environ)
    async with EnsembleRuntime(ensemble) as runtime:
        result = await score_passage("The council met on Tuesday.", runtime, deadline_s=20)
    assert set(result.missing) == set(ensemble.raters), result  # the capture server answers 400


def assert_no_sentinel(headers_seen: list[dict[str, str]]) -> None:
    for headers in headers_seen:
        for name, value in headers.items():
            for secret in SENTINELS.values():
                assert secret not in value, f"header {name} carried a provider key"


def test_custom_base_url_without_api_key_env_never_receives_the_provider_key(
    capture: Capture, tmp_path: Path
) -> None:
    path = custom_url_ensemble(tmp_path / "leak.yaml", capture.url)
    asyncio.run(rate_once(path, {}))
    assert len(capture.headers_seen) == len(PROVIDERS)  # every SDK really called it
    assert_no_sentinel(capture.headers_seen)


def test_bundled_sim_ensemble_pointed_elsewhere_never_receives_the_provider_key(
    capture: Capture,
) -> None:
    """``--param sim_url=http://elsewhere``: the bundled ensemble's endpoint is ASSAY_SIM_URL."""
    asyncio.run(rate_once(bundled_ensemble_path("sim"), {"ASSAY_SIM_URL": capture.url}))
    assert len(capture.headers_seen) == 3
    assert_no_sentinel(capture.headers_seen)
