"""A registry in a local folder (``file://``)."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from pathlib import Path

from assay.errors import RegistryError
from assay.obs.files import atomic_write_bytes, fsync_dir, fsync_file
from assay.registry.base import CARD_FILE, Registry


class FileRegistry(Registry):
    """Versions are published by renaming a fully written staging folder into place.

    ``os.rename`` of a directory onto an existing non-empty directory fails, so two writers
    can never publish the same version; the loser retries with the next number. Aliases move
    under an exclusive ``flock`` of the model's hidden ``.aliases.lock``. Files are
    fsynced before the rename and the folder after it; they are created 0666 minus the umask
    (readable by other users under the usual umask), never forced to 0600.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).absolute()
        self.root = "file://" + str(self.path)

    def _list_keys(self, prefix: str) -> list[str]:
        base = self.path / prefix if prefix else self.path
        keys: list[str] = []
        # os.walk skips folders that vanish mid-walk (another writer's staging folder being
        # published or cleaned up); hidden (staging/temp) entries are pruned, never listed.
        for folder, subfolders, files in os.walk(base):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            relative = Path(folder).relative_to(self.path)
            keys += [(relative / name).as_posix() for name in files if not name.startswith(".")]
        return keys

    def _read_bytes(self, key: str) -> bytes | None:
        try:
            return (self.path / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _write_small(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self.path / key, data)

    def _swap_small(self, key: str, expected: bytes | None, data: bytes) -> bool:
        target = self.path / key
        lock_path = self.path / key.split("/", 1)[0] / ".aliases.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._read_bytes(key) != expected:
                return False
            atomic_write_bytes(target, data)
            return True

    def _publish_version(self, name: str, version: str, files: dict[str, bytes]) -> bool:
        model_root = self.path / name
        final = model_root / version
        if final.exists():
            return False
        staging = model_root / f".staging-{version}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            for filename in sorted(files, key=lambda f: f == CARD_FILE):  # the card last
                (staging / filename).write_bytes(files[filename])
                fsync_file(staging / filename)
            fsync_dir(staging)
            try:
                os.rename(staging, final)
            except OSError:
                if final.exists():
                    return False
                raise
            fsync_dir(model_root)
        except OSError as exc:
            raise RegistryError(f"Could not write {final}: {exc.strerror or exc}.") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    def _fetch(self, key: str, dest: Path) -> None:
        source = self.path / key
        if not source.is_file():
            raise RegistryError(f"Registry file {source} is missing.")
        shutil.copyfile(source, dest)
