"""Small statistical helpers shared by both studies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given), by statsmodels'
    ``multipletests(method="holm")``. A NaN p-value still counts as a test and stays NaN."""
    from statsmodels.stats.multitest import multipletests  # heavy: imported when used

    p = np.asarray(p_values, dtype=float)
    if len(p) == 0:
        return []
    return [float(v) for v in multipletests(p, method="holm")[1]]
