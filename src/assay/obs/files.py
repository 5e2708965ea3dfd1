"""Durable, atomic file writes that other users can read.

A file is written to a hidden temporary name in its folder, flushed to disk (``fsync``), renamed
over the target, and the folder is fsynced so the rename survives a crash. The temporary file is
created with mode 0666 minus the umask (0644 under the usual umask 022), not 0600 as
``tempfile.mkstemp`` would: registry versions, aliases and reports are meant to be shared.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

SHARED_MODE = 0o666  # the kernel applies the umask


def new_temp_path(target: Path) -> Path:
    """Create an empty hidden file beside ``target`` (mode 0666 minus umask) and return it."""
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SHARED_MODE)
    os.close(fd)
    return tmp


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Persist a rename or a new entry in ``folder`` (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temporary file, fsync it, rename it onto ``path``, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
