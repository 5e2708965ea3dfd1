"""Hostile inputs shared by the attack tests."""

from __future__ import annotations

import pickle
from pathlib import Path


class _RunsCodeWhenUnpickled:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code in a tampered model."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def code_running_pickle(marker: Path) -> bytes:
    """Pickle bytes whose unpickling creates the file ``marker``."""
    return pickle.dumps(_RunsCodeWhenUnpickled(marker))
