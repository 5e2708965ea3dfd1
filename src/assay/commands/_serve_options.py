"""`assay serve <server>` commands generated from the server's settings fields.

Each field of the server's settings (:mod:`assay.serving.settings`) becomes one Typer option with
the field's flags, default, bounds and help; only the options given on the command line are
passed to the settings, so the ``ASSAY_*`` environment applies to the rest exactly as it does
for ``python -m assay_serving.<server>``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from pydantic.fields import FieldInfo

from assay.commands._common import user_errors
from assay.serving.settings import (
    Flags,
    ServerSettings,
    bounds_of,
    help_text,
    option_fields,
    settings_from,
)

S = TypeVar("S", bound=ServerSettings)


@dataclass(frozen=True)
class EntryDefault:
    """A default only this entry point has (e.g. the registry's production model): computed
    when neither the flag nor the environment gives the value; ``shown`` in ``--help``."""

    compute: Callable[[], Any]
    shown: str


ALIAS_SUFFIX = "__alias"
"""The hidden option taking a field's old spellings (``--max_batch_rows``) is ``<field>__alias``."""


def typer_option(name: str, field: FieldInfo, flags: Flags, shown: str | None = None) -> Any:
    """The Typer option for one settings field (its canonical flag, and ``off`` for a switch)."""
    first = f"{flags.names[0]}/{flags.off}" if flags.off else flags.names[0]
    return typer.Option(
        field.default,
        first,
        help=help_text(name, field),
        show_default=shown if shown is not None else True,
        **_bounds(field),
    )


def alias_option(field: FieldInfo, flags: Flags) -> Any:
    """A hidden option for the field's old spellings, so ``--help`` lists each option once."""
    return typer.Option(field.default, *flags.names[1:], hidden=True, **_bounds(field))


def _bounds(field: FieldInfo) -> dict[str, Any]:
    if field.annotation is bool:
        return {}
    low, high = bounds_of(field)
    return {"min": low, "max": high}


def _parameters(
    settings: type[ServerSettings], entry_defaults: Mapping[str, EntryDefault]
) -> list[inspect.Parameter]:
    parameters = []
    for name, field, flags in option_fields(settings):
        shown = entry_defaults[name].shown if name in entry_defaults else None
        option = typer_option(name, field, flags, shown)
        parameters.append(_keyword(name, option, field.annotation))
        if len(flags.names) > 1:
            alias = alias_option(field, flags)
            parameters.append(_keyword(name + ALIAS_SUFFIX, alias, field.annotation))
    return parameters


def _keyword(name: str, option: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


def settings_command(
    settings: type[S],
    run: Callable[[S], None],
    doc: str,
    entry_defaults: Mapping[str, EntryDefault] | None = None,
) -> Callable[..., None]:
    """A Typer command function taking one option per settings field and calling ``run``."""
    entry_defaults = dict(entry_defaults or {})
    context = inspect.Parameter(
        "context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    parameters = [context, *_parameters(settings, entry_defaults)]

    def command(context: typer.Context, **values: Any) -> None:
        given = {
            name.removesuffix(ALIAS_SUFFIX): value
            for name, value in values.items()
            if _from_command_line(context, name)
        }
        chosen = settings_from(settings, given)
        missing = {
            name: default.compute()
            for name, default in entry_defaults.items()
            if name not in chosen.model_fields_set
        }
        run(chosen.model_copy(update=missing) if missing else chosen)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = doc
    return user_errors(command)


def _from_command_line(context: typer.Context, name: str) -> bool:
    source = context.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
