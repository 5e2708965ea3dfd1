"""``python -m assay_serving.<server>`` arguments, generated from the server's settings fields.

Built on a copy of KServe's own parser (``--max_threads``...; KServe reads those from
``sys.argv`` itself), a settings field replacing KServe's argument of the same spelling. Every
generated argument defaults to "not given", so the environment and the settings' defaults apply
unless the flag is on the command line.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from typing import Any, TypeVar

from assay.errors import ConfigError
from assay.serving.settings import ServerSettings, help_text, option_fields, settings_from

S = TypeVar("S", bound=ServerSettings)

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "auto"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def parse_switch(value: str) -> bool:
    """A boolean flag's optional value: ``--enable_grpc=false``, ``--compile auto|off``."""
    word = value.strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise argparse.ArgumentTypeError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS)}")


def settings_parser(
    settings: type[ServerSettings],
    prog: str,
    description: str,
    base: argparse.ArgumentParser | None = None,
) -> argparse.ArgumentParser:
    """An argparse parser with one argument per settings field, on a copy of ``base``."""
    parser = copy.deepcopy(base) if base is not None else argparse.ArgumentParser(add_help=False)
    parser.prog, parser.description = prog, description
    parser.conflict_handler = "resolve"  # a field's flag replaces the base's argument
    if "-h" not in parser._option_string_actions:
        parser.add_argument("-h", "--help", action="help", help="show this help and exit")
    group = parser.add_argument_group(f"{prog} options")
    for name, field, flags in option_fields(settings):
        described = f"{help_text(name, field)} [default: {field.default}]"
        if field.annotation is bool:
            group.add_argument(
                *flags.names,
                dest=name,
                nargs="?",
                const=True,
                type=parse_switch,
                default=argparse.SUPPRESS,
                metavar="on|off",
                help=described,
            )
            if flags.off:
                group.add_argument(
                    flags.off,
                    dest=name,
                    action="store_const",
                    const=False,
                    default=argparse.SUPPRESS,
                    help=f"Set {flags.names[0]} off.",
                )
        else:
            group.add_argument(
                *flags.names,
                dest=name,
                type=_scalar_type(field.annotation),
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=described,
            )
    return parser


def _scalar_type(annotation: Any) -> Any:
    for kind in (int, float):
        if annotation is kind or annotation == kind | None:
            return kind
    return str


def settings_from_args(
    settings: type[S], parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> S:
    """The settings from ``argv`` (unknown arguments, KServe's own, are left to KServe)."""
    args, _ = parser.parse_known_args(argv)
    given = {name: getattr(args, name) for name in settings.model_fields if hasattr(args, name)}
    try:
        return settings_from(settings, given)
    except ConfigError as exc:
        parser.error(str(exc))
