"""The pieces of a self-contained HTML report page: escaped cells, tables, inline PNG figures and
the page shell. Both studies' reports are built from them, so a page can be mailed or archived
on its own (no external files or URLs)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

escape = html.escape


def cell(value: Any, digits: int, *, nan: str = "nan") -> str:
    """A table cell's text: floats to ``digits`` decimals (``nan`` for NaN), a dash for a
    missing value, anything else escaped."""
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return nan if math.isnan(value) else f"{value:.{digits}f}"
    return escape(str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table with an escaped header row; the row cells are HTML already (see ``cell``)."""
    head = "".join(f"<th>{escape(label)}</th>" for label in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def png_img(data: bytes, alt: str) -> str:
    """A PNG embedded in the page as a base64 data URI."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{encoded}">'


def page(title: str, css: str, sections: Iterable[str]) -> str:
    """The whole document: head with the title and the style sheet, then the sections."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{css}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )
