"""Self-contained HTML report pages, rendered from Jinja2 templates with autoescape on.

Publisher, rater, textbook and file names come from users' files, so every value a template
prints is escaped; no template marks a value safe. Figures are PNGs embedded as base64 data URIs
(no external files or URLs, so a page can be mailed or archived on its own): their alphabet
(A-Z, a-z, 0-9, +, /, =) passes through escaping unchanged.

Each study keeps its templates in a ``templates`` folder of its package; the page layout and the
table and figure macros shared by both are in ``assay/obs/templates``. Templates are package data
read through ``PackageLoader`` (importlib.resources), so they load from a wheel or an image.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

MISSING = "\u2013"  # en dash: a value that is not there


@dataclass(frozen=True)
class Stacked:
    """A table cell on two lines: a figure, and a smaller one under it (e.g. a 95% CI)."""

    main: str
    sub: str


@dataclass(frozen=True)
class Table:
    """A header row and rows of cells, each plain text (escaped when rendered) or Stacked."""

    header: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Figure:
    """A PNG drawn by assay, embedded in the page as a data URI."""

    alt: str
    png: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


def cell(value: Any, digits: int, *, nan: str = "nan") -> str:
    """A table cell's text: floats to ``digits`` decimals (``nan`` for NaN), a dash for a
    missing value, anything else as ``str``."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return nan if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]], digits: int, *, nan: str = "nan") -> Table:
    """A Table whose cells are formatted by ``cell`` (Stacked cells are kept as they are)."""
    return Table(
        header,
        [[c if isinstance(c, Stacked) else cell(c, digits, nan=nan) for c in r] for r in rows],
    )


def record_table(
    rows: list[dict[str, Any]], columns: list[tuple[str, str]], digits: int = 3
) -> Table:
    """A Table of dicts: ``columns`` are (key, header label) pairs."""
    header = [label for _, label in columns]
    return table(header, [[r.get(k) for k, _ in columns] for r in rows], digits)


@cache
def environment(package: str) -> Environment:
    """The Jinja2 environment for one study package's templates plus the shared ones."""
    env = Environment(
        loader=ChoiceLoader([PackageLoader(package), PackageLoader("assay.obs")]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = format  # {{ x|fmt(".3f") }} is f"{x:.3f}"
    env.filters["cell"] = cell
    env.tests["stacked"] = lambda value: isinstance(value, Stacked)
    return env


def render(package: str, template: str, **context: Any) -> str:
    """Render ``template`` from ``package``'s templates folder with autoescape."""
    return environment(package).get_template(template).render(**context)
