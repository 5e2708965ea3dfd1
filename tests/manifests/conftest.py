"""Fixtures of the manifest tests (helpers live in manifest_support.py)."""

from __future__ import annotations

import pytest
from manifest_support import TARGETS


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    """The name of each kustomize target in turn (root, overlays, variants)."""
    return str(request.param)
