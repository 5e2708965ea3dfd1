"""What a pipeline step sees of a KFP artifact: a path (folder or file) and a metadata dict.

Duck-typed, so the steps run in unit tests without kfp.
"""

from __future__ import annotations

from typing import Any, Protocol


class ArtifactLike(Protocol):
    path: str
    metadata: dict[str, Any]
