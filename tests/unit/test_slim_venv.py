"""images/slim_venv.py on a made-up virtualenv: test suites and the UNUSED parts go, what runs
stays, byte-identical copies of a shared library become symlinks to one file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def slim_venv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slim_venv", REPO / "images" / "slim_venv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("slim_venv", module)
    spec.loader.exec_module(module)
    return module


def write(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_slim_venv_removes_what_does_not_run_and_links_copies(tmp_path: Path, capsys) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    kept = [
        write(site / "pandas" / "__init__.py"),
        write(site / "pandas" / "core" / "frame.py"),
        write(site / "ray" / "__init__.py"),
        write(site / "ray" / "util" / "joblib" / "__init__.py"),
        write(site / "pyarrow" / "__init__.py"),
        write(site / "pyarrow" / "libarrow.so.2600", b"arrow" * 100),
        write(site / "pyarrow" / "libparquet.so.2600", b"parquet" * 100),
        write(site / "tests" / "conftest.py"),  # a top-level "tests" beside no __init__.py: kept
    ]
    removed = [
        write(site / "pandas" / "tests" / "test_frame.py", b"y" * 1000),
        write(site / "ray" / "rllib" / "__init__.py"),
        write(site / "ray" / "serve" / "api.py"),
        write(site / "ray" / "jars" / "ray.jar"),
        write(site / "grpc_tools" / "protoc.py"),
        write(site / "pyarrow" / "libarrow_flight.so.2600", b"flight" * 100),
        write(site / "pyarrow" / "_flight.cpython-311-x86_64-linux-gnu.so"),
        write(site / "pyarrow" / "libarrow_s3.so.2600"),
        write(site / "pyarrow" / "include" / "arrow" / "api.h"),
    ]
    library = b"\x7fELF python bindings" * 50
    copies = [
        write(site / "pyarrow" / name, library)
        for name in ("libarrow_python.so", "libarrow_python.so.2600", "libarrow_python.so.2600.1.0")
    ]

    slim_venv().main(tmp_path / "venv")

    assert all(path.is_file() for path in kept)
    assert not any(path.exists() for path in removed), [p for p in removed if p.exists()]
    first, *others = copies
    assert first.is_file() and not first.is_symlink()
    assert all(p.is_symlink() and p.resolve() == first.resolve() for p in others)
    assert all(p.read_bytes() == library for p in copies)
    # different contents in one folder are never linked
    assert not (site / "pyarrow" / "libparquet.so.2600").is_symlink()
    printed = capsys.readouterr().out
    assert "ray/rllib: " in printed and "identical shared libraries: " in printed
