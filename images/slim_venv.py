"""Trim a virtualenv for a runtime image (run in the build stage, after the installs).

- test suites that wheels ship inside their packages (``tests``/``test`` folders of a package:
  pandas, scipy, numpy, onnx...), never imported by a running program;
- Ray's Java jars (for Java workers; assay's Ray workers are Python).

Shared libraries are not stripped: ``strip`` breaks the ones auditwheel patched (numpy's
OpenBLAS failed to load: "ELF load command address/offset not page-aligned").

Prints what each step saved. Usage: ``python slim_venv.py /opt/venv``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

TEST_FOLDERS = {"tests", "test"}


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3*/site-packages")
    return site


def test_folders(site: Path) -> Iterator[Path]:
    """Folders named tests/test that sit inside a package (beside its __init__.py)."""
    for folder in sorted(site.rglob("*")):
        if (
            folder.name in TEST_FOLDERS
            and folder.is_dir()
            and (folder.parent / "__init__.py").is_file()
        ):
            yield folder


def main(venv: Path) -> None:
    site = site_packages(venv)
    removed = 0
    for folder in list(test_folders(site)):
        if folder.exists():
            removed += size_of(folder)
            shutil.rmtree(folder)
    print(f"test suites: {removed / 1e6:.0f} MB removed")
    jars = site / "ray" / "jars"
    if jars.is_dir():
        print(f"ray/jars: {size_of(jars) / 1e6:.0f} MB removed")
        shutil.rmtree(jars)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
