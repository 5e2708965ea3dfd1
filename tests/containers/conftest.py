"""Fixtures of the container tests (helpers in container_support.py).

Every module here says ``pytestmark = pytest.mark.container``: ``make test-image`` runs only
them; ``make test`` collects them too, and they skip (one line) where there is no engine or no
image, unless ASSAY_REQUIRE_CONTAINERS=1 makes that a failure.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

# _serving_support (tests/integration/serving): the contract-shaped model folder the servers load.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "serving"))

from container_support import (
    CLASSIFIER_IMAGE,
    IMAGE,
    Engine,
    find_engine,
    unavailable,
)


@functools.cache
def _engine_or_none() -> Engine | None:
    return find_engine()


@functools.cache
def _missing() -> str | None:
    """Why the container tests cannot run here, or None."""
    engine = _engine_or_none()
    if engine is None:
        return "no working podman or docker"
    absent = [ref for ref in (IMAGE, CLASSIFIER_IMAGE) if not engine.has_image(ref)]
    return f"not built: {', '.join(absent)}" if absent else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skipped here, not in a fixture: every skip then has this one location, and pytest's
    summary prints a single line for all of them."""
    reason = _missing()
    if reason is not None:
        unavailable(reason)


@pytest.fixture
def engine() -> Engine:
    """podman or docker, working; else skip (or fail under ASSAY_REQUIRE_CONTAINERS=1)."""
    found = _engine_or_none()
    if found is None:
        unavailable("no working podman or docker")
    return found


def _image(engine: Engine, ref: str) -> str:
    if not engine.has_image(ref):
        unavailable(f"image {ref} is not built")
    return ref


@pytest.fixture
def pipeline_image(engine: Engine) -> str:
    """The pipeline image (components, KubeRay, bias scorer), built."""
    return _image(engine, IMAGE)


@pytest.fixture
def classifier_image(engine: Engine) -> str:
    """The classifier server's lean image, built."""
    return _image(engine, CLASSIFIER_IMAGE)
