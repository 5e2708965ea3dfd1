"""Helpers shared by the sub-commands: error handling and console output."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from assay.errors import AssayError

P = ParamSpec("P")
R = TypeVar("R")

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
