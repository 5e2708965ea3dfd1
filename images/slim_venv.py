"""Trim a virtualenv for a runtime image (run in the build stage, after the installs).

- test suites that wheels ship inside their packages (``tests``/``test`` folders of a package:
  pandas, scipy, numpy, onnx...), never imported by a running program;
- the parts of packages that nothing in the image runs (``UNUSED``, each with the reason);
- byte-identical copies of one shared library in one folder (wheels cannot hold symlinks, so
  ``libX.so``, ``libX.so.N`` and ``libX.so.N.M`` arrive as three files): one file, the others
  symlinks to it.

Shared libraries are not stripped: ``strip`` breaks the ones auditwheel patched (numpy's
OpenBLAS failed to load: "ELF load command address/offset not page-aligned").

Prints what each step saved. Usage: ``python slim_venv.py /opt/venv``.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

TEST_FOLDERS = {"tests", "test"}

UNUSED: tuple[tuple[str, str], ...] = (
    ("ray/jars", "Java workers; assay's Ray workers are Python"),
    ("ray/rllib", "Ray's RL library; imported by nothing else (tune tries it under ImportError)"),
    ("ray/serve", "Ray Serve: models are served by KServe"),
    ("ray/llm", "Ray's LLM serving/batch library (imports ray.serve)"),
    ("grpc_tools", "protoc for Python (grpcio-tools, a kserve requirement): code generation only"),
    ("pyarrow/_flight.*", "Arrow Flight RPC: nothing imports pyarrow.flight"),
    ("pyarrow/flight.py", "Arrow Flight RPC"),
    ("pyarrow/libarrow_flight.so*", "Arrow Flight RPC (31 MB)"),
    ("pyarrow/libarrow_python_flight.so*", "Arrow Flight RPC"),
    (
        "pyarrow/_s3fs.*",
        "pyarrow's S3 filesystem: the registry talks S3 through minio; "
        "pyarrow.fs leaves S3FileSystem out when it is missing",
    ),
    ("pyarrow/libarrow_s3.so*", "pyarrow's S3 filesystem (17 MB)"),
    ("pyarrow/_pyarrow_cpp_tests.*", "pyarrow's C++ test hooks"),
    ("pyarrow/include", "C++ headers, for building extensions against pyarrow"),
    ("pyarrow/src", "C++ sources of pyarrow's Python bindings"),
)
"""Globs under site-packages removed from the images, with why nothing running needs them."""


def size_of(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove(path: Path) -> int:
    size = size_of(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return size


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


def digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def link_identical_libraries(site: Path) -> int:
    """Replace byte-identical ``lib*.so*`` files of one folder by symlinks to the first one."""
    saved = 0
    groups: dict[tuple[Path, int, str], list[Path]] = {}
    for library in sorted(site.rglob("lib*.so*")):
        if library.is_file() and not library.is_symlink():
            key = (library.parent, library.stat().st_size, digest(library))
            groups.setdefault(key, []).append(library)
    for (_, size, _), copies in groups.items():
        kept, *duplicates = copies
        for duplicate in duplicates:
            duplicate.unlink()
            duplicate.symlink_to(kept.name)
            saved += size
    return saved


def main(venv: Path) -> None:
    site = site_packages(venv)
    removed = sum(remove(folder) for folder in list(test_folders(site)) if folder.exists())
    print(f"test suites: {removed / 1e6:.0f} MB removed")
    for pattern, why in UNUSED:
        matched = sorted(site.glob(pattern))
        freed = sum(remove(path) for path in matched)
        if matched:
            print(f"{pattern}: {freed / 1e6:.1f} MB removed ({why})")
    print(f"identical shared libraries: {link_identical_libraries(site) / 1e6:.1f} MB linked")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
