"""What a JSON request body may make the server build, checked on its bytes before it is parsed.

A body inside the size limit can still cost far more than a legitimate request: 2 MiB of
``[],[],...`` is 700,000 Python lists to build and then hand to numpy, 8 MiB of tiny tensors is
440,000 dicts and lists through pydantic. :class:`JsonBudget` bounds the arrays and objects
(``containers``), the values (elements of arrays and members of objects) and the nesting depth a
body may hold, from the server's own limits (batch rows, features per row), and refuses a body
over any of them (400) before any Python object is built.

The counts come from the bytes: first an upper bound (every ``[``, ``{`` and ``,`` in the body,
in C, about 1 ms per MiB); only when that bound is over a limit, or deeper nesting is possible,
the strings and brackets are walked (one regular expression, brackets and commas inside strings
not counted) and the walk stops at the first count over its limit, so refusing a body costs
at most about a budget's worth of tokens, whatever the body's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assay.serving.tensors import BadRequest

TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
"""A string literal (escapes included) or a bracket."""
QUOTE, OPENING = ord('"'), frozenset(b"[{")
OVERHEAD_CONTAINERS = 64
"""The request's own objects and lists beside the tensors' data: the body, ``inputs``, each
tensor, its shape and parameters, ``outputs``..."""
OVERHEAD_VALUES = 512


@dataclass(frozen=True)
class JsonBudget:
    """The most arrays/objects, values and nesting levels a request body may hold."""

    max_containers: int
    max_values: int
    max_depth: int = 16

    @classmethod
    def for_tensors(cls, *, rows: int, values_per_row: int, tensors: int = 1) -> JsonBudget:
        """Room for ``tensors`` tensors of up to ``rows`` rows of ``values_per_row`` values each
        (flat, or one nested array per row), plus the request's own fields."""
        return cls(
            max_containers=tensors * rows + OVERHEAD_CONTAINERS,
            max_values=tensors * rows * values_per_row + OVERHEAD_VALUES,
        )

    def check(self, body: bytes) -> None:
        """:class:`BadRequest` (400) when ``body`` holds more than the budget allows."""
        commas = body.count(b",")
        if body.count(b"[") + body.count(b"{") <= self.max_depth and commas < self.max_values:
            return  # too few brackets to nest deeper, too few separators for more values
        containers = depth = strings = string_commas = 0
        for token in TOKEN.finditer(body):  # stops at the first count over its limit
            first = body[token.start()]
            if first == QUOTE:
                strings += 1
                string_commas += body.count(b",", token.start(), token.end())
                if strings > self.max_values:
                    raise self._refusal(f"over {self.max_values:,} JSON strings", self.max_values)
            elif first in OPENING:
                containers, depth = containers + 1, depth + 1
                if containers > self.max_containers:
                    raise self._refusal(
                        f"over {self.max_containers:,} JSON arrays and objects",
                        self.max_containers,
                    )
                if depth > self.max_depth:
                    raise BadRequest(
                        f"request body nests JSON arrays and objects over {self.max_depth} "
                        "levels deep; a v2 request needs a handful (tensor data at most "
                        "[rows][values])",
                        "body_too_complex",
                    )
            else:
                depth -= 1
        values = commas - string_commas + containers
        if values > self.max_values:
            raise self._refusal(f"about {values:,} JSON values", self.max_values)

    def _refusal(self, found: str, limit: int) -> BadRequest:
        return BadRequest(
            f"request body holds {found}, more than this server's requests can need (at most "
            f"{limit:,}, from its batch limits); send tensor data as flat arrays of at most "
            "the batch limit",
            "body_too_complex",
        )
