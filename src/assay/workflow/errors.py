"""Errors of pipeline runs (local or remote)."""

from assay.errors import AssayError


class PipelineRunError(AssayError):
    """A pipeline step failed, or a Kubeflow endpoint refused or could not be reached."""

    exit_code = 1
