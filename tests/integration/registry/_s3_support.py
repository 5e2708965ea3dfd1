"""A minimal version folder for the S3 registry tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any


def model_dir(path: Path, payload: bytes) -> Path:
    """``path`` with a ``model.joblib`` of ``payload`` and a small card."""
    path.mkdir(parents=True)
    (path / "model.joblib").write_bytes(payload)
    (path / "model-card.json").write_text(json.dumps({"estimator": "ada_boost"}))
    return path


def put_raw(registry: Any, key: str, data: bytes) -> None:
    """Write ``<prefix>/<key>`` straight into the registry's bucket, as an attacker with the
    bucket's write rights would (no registry code involved)."""
    full = f"{registry.prefix}/{key}"
    registry._client.put_object(registry.bucket, full, io.BytesIO(data), len(data))
