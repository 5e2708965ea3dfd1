"""configure_logging: HTTP clients' per-request INFO records are shown only at debug, and stdlib
records come out as JSON with their logger name when asked."""

from __future__ import annotations

import json
import logging

import pytest

from assay.obs.logging import configure_logging


def _emit_httpx_request() -> None:
    logging.getLogger("httpx").info('HTTP Request: GET http://127.0.0.1:1/v1/models "200 OK"')


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure_logging("info")


def test_per_request_lines_are_hidden_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    _emit_httpx_request()
    logging.getLogger("kserve").info("model loaded")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["event"]) for r in lines] == [("kserve", "model loaded")]


def test_per_request_lines_are_shown_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", json=True)
    _emit_httpx_request()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(r["logger"] == "httpx" and "HTTP Request" in r["event"] for r in lines)
