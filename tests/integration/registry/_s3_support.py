"""A minimal version folder for the S3 registry tests."""

from __future__ import annotations

import json
from pathlib import Path


def model_dir(path: Path, payload: bytes) -> Path:
    """``path`` with a ``model.joblib`` of ``payload`` and a small card."""
    path.mkdir(parents=True)
    (path / "model.joblib").write_bytes(payload)
    (path / "model-card.json").write_text(json.dumps({"estimator": "ada_boost"}))
    return path
