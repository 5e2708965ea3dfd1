"""A small PromQL reader for the manifest tests: which labels each query relies on.

It parses the subset of PromQL that rules and dashboards use (selectors with matchers and
ranges, function calls, aggregations with ``by``/``without``, binary operators with
``on``/``ignoring``/``group_*``, numbers) and walks it with the label set each series carries,
reporting every label a query names that its input cannot have:

- a matcher ``metric{label=...}`` on a label the metric does not carry;
- ``by (label)`` / ``without (label)`` / ``on (label)`` on a label the aggregated or matched
  expression does not carry (after ``by``, only the listed labels remain);
- a metric that is not exported at all;
- two vector sides of a one-to-one operator whose label sets differ (they would match nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "group", "topk",
                "bottomk", "quantile", "count_values"}  # fmt: skip
# functions whose result keeps the labels of their (last vector) argument
KEEP_LABELS = {"rate", "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor",
               "round", "clamp", "clamp_min", "clamp_max", "avg_over_time", "max_over_time",
               "min_over_time", "sum_over_time", "count_over_time", "last_over_time", "sqrt",
               "exp", "ln", "log2", "log10", "changes", "resets"}  # fmt: skip
PRECEDENCE = [{"or"}, {"and", "unless"}, {"==", "!=", "<=", "<", ">=", ">"}, {"+", "-"},
              {"*", "/", "%", "atan2"}, {"^"}]  # fmt: skip
TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)|(?P<str>\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<range>\[[^\]]*\])|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){},]))"
)

Labels = frozenset[str]


@dataclass
class Report:
    """What the walk found: problems (empty = fine) and the metric names it met."""

    problems: list[str] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)


def tokenize(expr: str) -> list[str]:
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read PromQL at {expr[pos : pos + 20]!r}")
        tokens.append(match.group(match.lastgroup or ""))
        pos = match.end()
        while pos < len(expr) and expr[pos].isspace():
            pos += 1
    return tokens


class _Walker:
    """Recursive-descent parser that computes each sub-expression's labels as it goes.

    The value of an expression is its label set, or None for a scalar (a number).
    """

    def __init__(self, tokens: list[str], labels_of: Callable[[str], Labels | None]) -> None:
        self.tokens, self.pos, self.labels_of = tokens, 0, labels_of
        self.report = Report()

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected!r}, found {token!r}")
        self.pos += 1
        return token

    def label_list(self) -> list[str]:
        self.take("(")
        names = []
        while self.peek() != ")":
            names.append(self.take())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return names

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def require(self, names: list[str], have: Labels | None, where: str) -> None:
        for name in names:
            if have is None or name not in have:
                self.problem(f"{where}: label {name!r} not on {sorted(have or [])}")

    # expression := binary
    def expression(self, level: int = 0) -> Labels | None:
        if level == len(PRECEDENCE):
            return self.unary()
        left = self.expression(level + 1)
        while self.peek() in PRECEDENCE[level]:
            op = self.take()
            left = self.binary(op, left, level)
        return left

    def binary(self, op: str, left: Labels | None, level: int) -> Labels | None:
        if self.peek() == "bool":
            self.take()
        on: list[str] | None = None
        ignoring: list[str] = []
        if self.peek() in ("on", "ignoring"):
            keyword = self.take()
            names = self.label_list()
            on, ignoring = (names, []) if keyword == "on" else (None, names)
        group: str | None = None
        if self.peek() in ("group_left", "group_right"):
            group = self.take()
            if self.peek() == "(":
                self.label_list()
        right = self.expression(level + 1) if op != "^" else self.expression(level)
        if left is None or right is None:
            return right if left is None else left
        where = f"operator {op!r}"
        for side in (left, right):
            self.require(on or ignoring, side, where)
        if on is not None:
            keys_l, keys_r = left & set(on), right & set(on)
        else:
            keys_l, keys_r = left - set(ignoring), right - set(ignoring)
        set_operator = op in ("and", "or", "unless")
        if group is None and not set_operator and keys_l != keys_r:
            self.problem(f"{where}: sides {sorted(left)} and {sorted(right)} never match")
        return right if group == "group_right" else left

    def unary(self) -> Labels | None:
        if self.peek() in ("-", "+"):
            self.take()
        return self.primary()

    def primary(self) -> Labels | None:
        token = self.peek()
        if token == "(":
            self.take("(")
            value = self.expression()
            self.take(")")
            return self.ranged(value)
        if re.fullmatch(r"\d.*", token):
            self.take()
            return None
        if token.startswith('"'):
            self.take()
            return None
        if token in AGGREGATIONS:
            return self.aggregation()
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token):
            name = self.take()
            if self.peek() == "(":
                return self.function(name)
            return self.selector(name)
        if token == "{":
            raise ValueError("selectors without a metric name are not supported")
        raise ValueError(f"unexpected token {token!r}")

    def ranged(self, value: Labels | None) -> Labels | None:
        if self.peek().startswith("["):
            self.take()
        return value

    def selector(self, name: str) -> Labels | None:
        have = self.labels_of(name)
        self.report.metrics.add(name)
        if have is None:
            self.problem(f"metric {name!r} is not exported by any server")
        if self.peek() == "{":
            self.take("{")
            while self.peek() != "}":
                label = self.take()
                self.take()  # = != =~ !~
                self.take()  # the string
                self.require([label], have, f"{name}{{...}} matcher")
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
        return self.ranged(have if have is not None else frozenset())

    def arguments(self) -> list[Labels | None]:
        self.take("(")
        values = []
        while self.peek() != ")":
            values.append(self.expression())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return values

    def function(self, name: str) -> Labels | None:
        values = self.arguments()
        vectors = [v for v in values if v is not None]
        if name == "histogram_quantile":
            self.require(["le"], vectors[-1] if vectors else None, "histogram_quantile")
            return frozenset((vectors[-1] if vectors else frozenset()) - {"le"})
        if name in ("scalar", "time", "vector"):
            return None if name != "vector" else frozenset()
        if name not in KEEP_LABELS:
            raise ValueError(f"function {name!r} is not known to this checker")
        return self.ranged(vectors[-1] if vectors else None)

    def aggregation(self) -> Labels | None:
        name = self.take()
        clause: tuple[str, list[str]] | None = None
        if self.peek() in ("by", "without"):
            clause = (self.take(), self.label_list())
        values = self.arguments()
        if clause is None and self.peek() in ("by", "without"):
            clause = (self.take(), self.label_list())
        inner = values[-1] if values else None
        if clause is None:
            return frozenset()
        keyword, names = clause
        self.require(names, inner, f"{name} {keyword} ({', '.join(names)})")
        if keyword == "by":
            return frozenset(names)
        return frozenset((inner or frozenset()) - set(names))


def check(expr: str, labels_of: Callable[[str], Labels | None]) -> tuple[Report, Labels | None]:
    """Walk ``expr``; ``labels_of(metric)`` gives a series' labels (None: no such metric).
    Returns the report and the labels of the result (None for a scalar)."""
    walker = _Walker(tokenize(expr), labels_of)
    result = walker.expression()
    if walker.pos != len(walker.tokens):
        raise ValueError(f"unread PromQL from {walker.tokens[walker.pos :]!r} in {expr!r}")
    return walker.report, result
