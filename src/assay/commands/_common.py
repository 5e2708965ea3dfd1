"""Helpers shared by the sub-commands: options declared by settings, error handling."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console

from assay.config import invalid_option
from assay.errors import AssayError

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=BaseSettings)

err_console = Console(stderr=True)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an AssayError into one red sentence on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AssayError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=exc.exit_code) from exc

    return wrapper


def deprecated_spelling(given: Any, *, old_flag: str, old_env: str, new: str) -> Any:
    """A value given under an option's old spelling (the flag, else its environment variable),
    with a warning on stderr; None when neither is used. Old spellings last one more release."""
    value = given if given is not None else os.environ.get(old_env) or None
    if value is not None:
        which = old_flag if given is not None else old_env
        err_console.print(
            f"[yellow]warning:[/] {which} is deprecated and will be removed in the next "
            f"release; use {new}."
        )
    return value


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_var(settings: type[BaseSettings], name: str) -> str:
    return (str(settings.model_config.get("env_prefix", "")) + name).upper()


def setting(
    settings: type[BaseSettings],
    name: str,
    *flags: str,
    choices: type[Enum] | None = None,
    unset: bool = False,
) -> Any:
    """The Typer option of settings field ``name``: flag ``--name`` (or ``flags``), the field's
    default and description, its environment variable. ``choices``: the enum the CLI shows for
    a Literal field; ``unset``: default None, so the command can tell "not given"."""
    field = settings.model_fields[name]
    default = None if unset else field.default
    if choices is not None and default is not None:
        default = choices(default)
    return typer.Option(
        default,
        *(flags or (flag(name),)),
        help=field.description,
        envvar=env_var(settings, name),
    )


def settings_from(settings: type[S], options: Mapping[str, Any]) -> S:
    """The settings object from the command's options (those named like its fields; None =
    not given); a bad value is a UsageError of one sentence."""
    given = {
        name: value.value if isinstance(value, Enum) else value
        for name, value in options.items()
        if name in settings.model_fields and value is not None
    }
    try:
        return settings(**given)
    except ValidationError as exc:
        raise invalid_option(exc) from exc
