"""CLI tests run the root callback, which points structlog at CliRunner's temporary stderr;
reset structlog afterwards so later tests do not log into a closed stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    import structlog

    yield
    structlog.reset_defaults()
