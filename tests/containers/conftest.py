"""Fixtures of the container tests (helpers in container_support.py).

Every module here says ``pytestmark = pytest.mark.container``: ``make test-image`` runs only
them; ``make test`` collects them too, and they skip (one line) where there is no engine or no
image, unless ASSAY_REQUIRE_CONTAINERS=1 makes that a failure.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def _engine_or_none() -> Engine | None:
    return find_engine()


@pytest.fixture
def engine(_engine_or_none: Engine | None) -> Engine:
    """podman or docker, working; else skip (or fail under ASSAY_REQUIRE_CONTAINERS=1)."""
    if _engine_or_none is None:
        unavailable("no working podman or docker")
    return _engine_or_none


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
