"""The exception hierarchy shared by every part of assay.

Each error carries a sentence meant for a person; the CLI prints it and exits with
``exit_code`` instead of showing a traceback.
"""


class AssayError(Exception):
    """Base class: an error whose message is fit to show to a user."""

    exit_code = 1


class UsageError(AssayError):
    """The caller asked for something impossible (bad option, bad combination)."""

    exit_code = 2


class DataValidationError(AssayError):
    """Input data failed validation; the message names the column or row."""

    exit_code = 2


class RegistryError(AssayError):
    """The model registry could not do what was asked (unknown version, immutable overwrite...)."""

    exit_code = 3


class ConfigError(AssayError):
    """A configuration file or environment variable is missing or invalid."""

    exit_code = 2
