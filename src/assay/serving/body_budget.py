"""What a JSON request body may make the server build, checked on its bytes before it is parsed.

A body inside the size limit can still cost far more than a legitimate request: 2 MiB of
``[],[],...`` is 700,000 Python lists to build and then hand to numpy, 8 MiB of tiny tensors is
440,000 dicts and lists through pydantic. :class:`JsonBudget` bounds the arrays and objects
(``containers``), the values (elements of arrays and members of objects) and the nesting depth a
body may hold, from the server's own limits (batch rows, features per row), and refuses a body
over any of them (400) before any Python object is built.

The counts come from the bytes: first an upper bound (every ``[``, ``{`` and ``,`` in the body,
in C, about 1 ms per MiB); only when that bound is over a limit, or deeper nesting is possible,
the string literals are cut out (one ``find`` per string, refused past ``max_strings``) and the
rest counted again in C, so brackets and commas inside passages never count against the
budget, and refusing a body costs a few passes over its bytes whatever it holds.

``max_string_bytes`` (the bias scorer's passage cap) refuses a body holding a longer string before
the route's parser (pydantic, about 3 ms per MiB) builds the request: a body too short to hold one
costs nothing more; a longer one, once within the structure budget (so it holds few values), is
decoded by orjson and its strings measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from assay.serving.tensors import BadRequest

STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"')
"""The rest of a string literal after its opening quote (escapes included)."""
NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
OPENING = frozenset(b"[{")
OVERHEAD_CONTAINERS = 64
"""The request's own objects and lists beside the tensors' data: the body, ``inputs``, each
tensor, its shape and parameters, ``outputs``..."""
OVERHEAD_VALUES = 512
OVERHEAD_STRINGS = 256
"""Keys, names, datatypes, ids and parameters of a request whose tensors hold no text."""


@dataclass(frozen=True)
class JsonBudget:
    """The most arrays/objects, values, strings and nesting levels a request body may hold."""

    max_containers: int
    max_values: int
    max_strings: int
    max_depth: int = 16
    max_string_bytes: int | None = None
    string_limit_reason: str = ""

    @classmethod
    def for_tensors(
        cls, *, rows: int, values_per_row: int, tensors: int = 1, text: bool = False
    ) -> JsonBudget:
        """Room for ``tensors`` tensors of up to ``rows`` rows of ``values_per_row`` values each
        (flat, or one nested array per row; strings when ``text``), plus the request's own
        fields."""
        values = tensors * rows * values_per_row
        return cls(
            max_containers=tensors * rows + OVERHEAD_CONTAINERS,
            max_values=values + tensors * rows + OVERHEAD_VALUES,  # a nested row is a value too
            max_strings=(values if text else 0) + OVERHEAD_STRINGS,
        )

    def check(self, body: bytes) -> None:
        """:class:`BadRequest` (400) when ``body`` holds more than the budget allows."""
        self._check_structure(body)
        if self.max_string_bytes is not None and len(body) > self.max_string_bytes:
            self._check_strings(body, self.max_string_bytes)

    def _check_structure(self, body: bytes) -> None:
        brackets = body.count(b"[") + body.count(b"{")
        if brackets <= self.max_depth and body.count(b",") < self.max_values:
            return  # too few brackets to nest deeper, too few separators for more values
        skeleton = self._without_strings(body)
        containers = skeleton.count(b"[") + skeleton.count(b"{")
        if containers > self.max_containers:
            raise self._refusal(f"{containers:,} JSON arrays and objects", self.max_containers)
        values = skeleton.count(b",") + containers
        if values > self.max_values:
            raise self._refusal(f"about {values:,} JSON values", self.max_values)
        if containers > self.max_depth and nesting_depth(skeleton) > self.max_depth:
            raise BadRequest(
                f"request body nests JSON arrays and objects over {self.max_depth} levels deep; "
                "a v2 request needs a handful (tensor data at most [rows][values])",
                "body_too_complex",
            )

    def _check_strings(self, body: bytes, limit: int) -> None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return  # the route's parser refuses it with its own message
        for text in strings_in(document):
            if len(text) * 4 <= limit:
                continue  # a character is at most 4 UTF-8 bytes
            found = len(text.encode("utf-8", "replace"))
            if found > limit:
                reason = f"; {self.string_limit_reason}" if self.string_limit_reason else ""
                raise BadRequest(
                    f"request body holds a string of {found:,} UTF-8 bytes, more than this "
                    f"server takes ({limit:,}{reason})",
                    "string_too_long",
                )

    def _without_strings(self, body: bytes) -> bytes:
        """``body`` with its string literals cut out; refused past ``max_strings`` of them."""
        pieces: list[bytes] = []
        position = strings = 0
        while (start := body.find(b'"', position)) >= 0:
            strings += 1
            if strings > self.max_strings:
                raise self._refusal(f"over {self.max_strings:,} JSON strings", self.max_strings)
            pieces.append(body[position:start])
            rest = STRING_REST.match(body, start + 1)
            position = rest.end() if rest else len(body)  # unterminated: the parser refuses it
        pieces.append(body[position:])
        return b"".join(pieces)

    def _refusal(self, found: str, limit: int) -> BadRequest:
        return BadRequest(
            f"request body holds {found}, more than this server's requests can need (at most "
            f"{limit:,}, from its batch limits); send tensor data as flat arrays of at most "
            "the batch limit",
            "body_too_complex",
        )


def strings_in(document: object) -> Iterator[str]:
    """Every string value and key of a decoded JSON document (nesting already bounded)."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, list):
        for item in document:
            yield from strings_in(item)
    elif isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from strings_in(value)


def nesting_depth(skeleton: bytes) -> int:
    """How deep the brackets of ``skeleton`` (a body without its strings) nest; 0 when more
    close than open (malformed: the parser refuses it). Runs only on bodies within the container
    budget, so the loop is short."""
    brackets = skeleton.translate(None, NOT_BRACKETS)
    if len(brackets) > 2 * (brackets.count(b"[") + brackets.count(b"{")):
        return 0
    depth = deepest = 0
    for bracket in brackets:
        depth += 1 if bracket in OPENING else -1
        deepest = max(deepest, depth)
    return deepest
