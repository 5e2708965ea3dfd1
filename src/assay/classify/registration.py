"""The training pipeline's last step: register the exported model folder.

Apart from the other steps so that its subprocess (or pod) imports the registry code only.
"""

from __future__ import annotations

from pathlib import Path

from assay.classify.artifacts import ArtifactLike
from assay.obs.logging import get_logger
from assay.registry import open_registry, registry_signer

log = get_logger("assay.classify.steps")


def register_step(model: ArtifactLike, registry: str, model_name: str) -> tuple[str, str]:
    """Register and sign the model folder; return ``(version, version URI)``. The key:
    ASSAY_SIGNING_KEY (the step's Secret), else the local registry's own."""
    reg = open_registry(registry or None)
    version = reg.register(model_name, Path(model.path), registry_signer(reg.root))
    uri = reg.uri(model_name, version)
    log.info("model registered", model=model_name, version=version, uri=uri)
    return version, uri
