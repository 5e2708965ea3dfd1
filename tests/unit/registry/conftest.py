"""Fixtures for registry tests: a tiny model folder shaped like the exported model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def make_model_dir(path: Path, estimator: str = "random_forest", payload: bytes = b"model") -> Path:
    """A folder holding model.joblib (opaque bytes; the registry never unpickles) and a card."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.joblib").write_bytes(payload)
    card = {
        "model_name": "wdbc-classifier",
        "estimator": estimator,
        "threshold": 0.31,
        "metrics": {"roc_auc": 0.993, "clinical_sensitivity_oof": 0.981, "sensitivity": 0.95},
    }
    (path / "model-card.json").write_text(json.dumps(card))
    return path


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """CLI tests point structlog at CliRunner's temporary stderr; undo that afterwards."""
    import structlog

    yield
    structlog.reset_defaults()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "model")


@pytest.fixture
def make_model() -> Callable[..., Path]:
    return make_model_dir
