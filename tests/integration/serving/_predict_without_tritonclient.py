"""Runs the ``assay`` CLI with tritonclient made uninstallable: every import of it raises.

``python _predict_without_tritonclient.py predict --url ... rows.csv`` is ``assay predict ...``
in an interpreter where ``import tritonclient`` (and any submodule) fails as it would without the
package; ``python _predict_without_tritonclient.py import-tritonclient`` tries the import itself,
so a test can see that the blocker blocks.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class NoTritonclient(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "tritonclient" or fullname.startswith("tritonclient."):
            raise ImportError(f"No module named {fullname!r} (blocked: not installed)")
        return None


def main() -> None:
    sys.meta_path.insert(0, NoTritonclient())
    for name in [m for m in sys.modules if m == "tritonclient" or m.startswith("tritonclient.")]:
        del sys.modules[name]
    if sys.argv[1:] == ["import-tritonclient"]:
        import tritonclient  # noqa: F401  (must raise)

        return
    from assay.cli import app

    app(prog_name="assay")


if __name__ == "__main__":
    main()
