"""Random states derived from the run seed and a work unit's identity, never from execution order.

Every random choice (fold shuffles, SMOTE, each estimator) gets ``derive_seed(seed, *identity)``,
so the same seed gives the same numbers whichever worker runs a unit and in whatever order.
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *identity: object) -> int:
    """A 31-bit random state from the run seed and the parts naming one unit of work."""
    text = "\x1f".join([str(seed), *(str(part) for part in identity)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
