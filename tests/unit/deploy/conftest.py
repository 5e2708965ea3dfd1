"""Fixtures of the deploy tests (the fakes live in deploy_fakes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from deploy_fakes import CRD_FILE, FakeClock, strict_schema


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def isvc_schema() -> Any:
    """The InferenceService CRD's openAPIV3Schema, strict about unknown fields."""
    import yaml

    if not CRD_FILE.is_file():
        pytest.skip(f"{CRD_FILE} is absent (shared/ must sit beside the repository)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(CRD_FILE.read_text(), Loader=loader)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return strict_schema(schema)


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """assay.deploy logs; a CLI test elsewhere may have pointed structlog at a closed stream."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
