"""Register the exported model as a new immutable version (alias latest moves to it)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Model

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def register_model(model: Input[Model], registry: str, model_name: str) -> NamedTuple(  # type: ignore[valid-type]
    "Registered", version=str, model_uri=str
):
    """registry: root URI (file://..., s3://bucket/prefix); "" means ASSAY_REGISTRY of the step.
    Returns the new version (v1, v2, ...) and the URI of its folder (a KServe storageUri)."""
    from collections import namedtuple

    from assay.classify.registration import register_step

    version, model_uri = register_step(model, registry, model_name)
    return namedtuple("Registered", ["version", "model_uri"])(version, model_uri)  # type: ignore[call-arg]
