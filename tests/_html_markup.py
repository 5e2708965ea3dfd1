"""Hostile names and a check that a report page holds no markup of theirs (the report attacks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

HOSTILE_NAMES = (
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '" onmouseover="x',
)
"""A tag with an event handler, a script element, and a quote that would end an attribute."""

FIGURE_PREFIX = "data:image/png;base64,"


@dataclass
class Markup(HTMLParser):
    """Every element and attribute of a page, and its text, as a browser's parser sees them."""

    elements: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Markup:
    markup = Markup()
    markup.feed(page)
    markup.close()
    return markup


def live_markup(page: str, figure_alts: set[str]) -> list[str]:
    """What in ``page`` the templates do not emit: script elements, event-handler attributes,
    and images other than assay's own figures (``alt`` one of ``figure_alts``, ``src`` a PNG
    data URI, no other attribute)."""
    found = []
    for tag, attrs in parse(page).elements:
        found += [f"{tag} [{name}]" for name in attrs if name.lower().startswith("on")]
        if tag == "script":
            found.append("script element")
        if tag == "img" and not (
            set(attrs) == {"alt", "src"}
            and attrs["alt"] in figure_alts
            and str(attrs["src"]).startswith(FIGURE_PREFIX)
        ):
            found.append(f"img {attrs}")
    return found


def visible_text(page: str) -> str:
    return "".join(parse(page).text)
