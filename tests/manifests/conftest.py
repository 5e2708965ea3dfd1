"""Fixtures of the manifest tests (helpers live in manifest_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from manifest_support import TARGETS


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    """The name of each kustomize target in turn (root, overlays, variants)."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """A test here runs the CLI, which points structlog at CliRunner's temporary stderr."""
    import structlog

    yield
    structlog.reset_defaults()
