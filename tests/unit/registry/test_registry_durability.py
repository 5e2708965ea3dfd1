"""A crash right after a registry write must not leave an empty or missing alias or version.

Power loss cannot be simulated here, so the test records which files and folders were fsynced
(a spy on ``os.fsync`` that resolves each descriptor through /proc/self/fd) and in what order
relative to the rename that publishes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assay.registry import FileRegistry, open_registry

NAME = "wdbc-classifier"


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    events: list[str] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append(f"rename {dst}")
        real_replace(src, dst)

    def rename(src: str | Path, dst: str | Path) -> None:
        events.append(f"rename {dst}")
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    return events


def test_alias_is_fsynced_before_and_its_folder_after_the_rename(
    tmp_path: Path, model_dir: Path, synced: list[str]
) -> None:
    registry = open_registry(f"file://{tmp_path / 'reg'}")
    assert isinstance(registry, FileRegistry)
    registry.register(NAME, model_dir)
    aliases = registry.path / NAME / "aliases"
    renamed = synced.index(f"rename {aliases / 'latest.json'}")
    before, after = synced[:renamed], synced[renamed + 1 :]
    assert any(e.startswith(f"fsync {aliases}/.latest.json.") for e in before), synced
    assert f"fsync {aliases}" in after, synced


def test_version_files_are_fsynced_before_publishing_and_the_model_folder_after(
    tmp_path: Path, model_dir: Path, synced: list[str]
) -> None:
    registry = open_registry(f"file://{tmp_path / 'reg'}")
    assert isinstance(registry, FileRegistry)
    registry.register(NAME, model_dir)
    published = synced.index(f"rename {registry.path / NAME / 'v1'}")
    before, after = " ".join(synced[:published]), synced[published + 1 :]
    assert "/model.joblib" in before and "/model-card.json" in before, synced
    assert f"fsync {registry.path / NAME}" in after, synced
