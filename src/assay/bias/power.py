"""How many textbooks per publisher a study needs to call a difference between two publishers:
an analytic (normal-approximation) power calculation from the model's variance components.

On the interval scale a publisher's estimated effect averages T textbooks of P passages, each
rated by R raters, so its sampling variance is

    V(T) = textbook_sd^2 / T + passage_sd^2 / (T P) + rater_sd^2 / (T P R)

(rater_sd: the root mean square of the raters' scales; rater offsets cancel because every rater
rates every publisher). The difference of two publishers has variance 2 V(T). The verdict
"credibly different" needs the 95% interval of the difference fully outside the ROPE, so with a
true difference d the chance of that is about Phi((|d| - rope) / sqrt(2 V(T)) - 1.96). The
variance components are treated as known (plugged in from a fit), which makes this slightly
optimistic for small T; it does not model refusals (shrink P by the refusal share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

Z_95 = 1.959964


@dataclass(frozen=True)
class VarianceComponents:
    textbook_sd: float
    passage_sd: float
    rater_sd: float


def difference_se(
    components: VarianceComponents, textbooks: int, passages_per_textbook: int, raters: int
) -> float:
    """Standard error of the difference between two publishers' effects."""
    per_publisher = (
        components.textbook_sd**2 / textbooks
        + components.passage_sd**2 / (textbooks * passages_per_textbook)
        + components.rater_sd**2 / (textbooks * passages_per_textbook * raters)
    )
    return math.sqrt(2 * per_publisher)


def power(
    difference: float,
    rope: float,
    components: VarianceComponents,
    textbooks: int,
    passages_per_textbook: int,
    raters: int,
) -> float:
    """Chance that the 95% interval of the difference lies fully beyond the ROPE."""
    se = difference_se(components, textbooks, passages_per_textbook, raters)
    return float(stats.norm.cdf((abs(difference) - rope) / se - Z_95))


def textbooks_needed(
    difference: float,
    rope: float,
    components: VarianceComponents,
    passages_per_textbook: int,
    raters: int,
    target: float = 0.8,
    max_textbooks: int = 10_000,
) -> int | None:
    """The fewest textbooks per publisher giving at least ``target`` power (None: not within
    ``max_textbooks``, e.g. a difference inside the ROPE is never 'credibly different')."""
    if abs(difference) <= rope:
        return None
    for textbooks in range(1, max_textbooks + 1):
        if power(difference, rope, components, textbooks, passages_per_textbook, raters) >= target:
            return textbooks
    return None
