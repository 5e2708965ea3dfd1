"""Every assay pipeline, by name, for `assay compile`, `assay submit` and `assay train`.

Entries are "module:attribute" strings so that importing this package stays cheap; adding a
pipeline is one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

from assay.errors import UsageError

PIPELINES: dict[str, str] = {
    "training": "assay_pipelines.training:training_pipeline",
    "bias-study": "assay_pipelines.bias_study:bias_study_pipeline",
}


def get_pipeline(name: str) -> Any:
    """The @dsl.pipeline object registered under ``name``."""
    try:
        target = PIPELINES[name]
    except KeyError:
        known = ", ".join(sorted(PIPELINES))
        raise UsageError(f"Unknown pipeline {name!r}; choose one of: {known}.") from None
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
