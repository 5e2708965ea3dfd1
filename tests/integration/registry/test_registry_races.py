"""Concurrent registrations, on the file registry and on S3 (moto's server, the real minio client).

The attacks: two pipeline runs register at the same moment and are both told ``v1`` (the first
run's deploy step would then roll out the second run's model); a slower registration moves
``latest`` back to an older version. Threads drive the real registries; the hooks below only
hold a thread at a chosen point to force the interleaving, they replace no storage call.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _s3_support import model_dir

from assay.registry import open_registry
from assay.registry.base import Registry

pytestmark = [pytest.mark.integration]
NAME = "wdbc-classifier"


@pytest.fixture(params=["file", "s3"])
def registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "s3":
        request.getfixturevalue("minio_env")
        return f"s3://race-{uuid.uuid4().hex[:8]}/registry"
    return f"file://{tmp_path / 'registry'}"


def _hold_once(registry: Registry, method: str, hold: Callable[[], None]) -> None:
    """Make ``registry.<method>`` call ``hold()`` after its first call returns."""
    original: Callable[..., Any] = getattr(registry, method)
    calls = []

    def held(*args: Any) -> Any:
        result = original(*args)
        if not calls:
            calls.append(1)
            hold()
        return result

    setattr(registry, method, held)


def _register_in_threads(registries: list[Registry], folders: list[Path]) -> list[str]:
    told: list[str] = [""] * len(registries)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            told[i] = registries[i].register(NAME, folders[i])
        except BaseException as exc:  # surfaced below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(registries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return told


def test_two_registrations_that_see_the_same_next_number_get_two_versions(
    registry_uri: str, tmp_path: Path
) -> None:
    registries = [open_registry(registry_uri) for _ in range(2)]
    both_counted = threading.Barrier(2)
    for registry in registries:
        _hold_once(registry, "_next_number", lambda: both_counted.wait(timeout=60))
    folders = [model_dir(tmp_path / f"m{i}", f"model {i}".encode() * 100) for i in range(2)]

    told = _register_in_threads(registries, folders)

    assert sorted(told) == ["v1", "v2"], told
    reader = open_registry(registry_uri)
    for version, folder in zip(told, folders, strict=True):
        fetched = reader.download(NAME, version, tmp_path / f"dl-{version}")
        assert (fetched / "model.joblib").read_bytes() == (folder / "model.joblib").read_bytes()
    assert reader.aliases(NAME)["latest"] == "v2"


def test_a_slower_registration_never_moves_latest_back(registry_uri: str, tmp_path: Path) -> None:
    slow, fast = open_registry(registry_uri), open_registry(registry_uri)
    fast_done = threading.Event()
    _hold_once(slow, "_publish_version", lambda: fast_done.wait(timeout=60))
    folders = [model_dir(tmp_path / f"m{i}", f"model {i}".encode()) for i in range(2)]
    told: dict[str, str] = {}

    def register_slow() -> None:
        told["slow"] = slow.register(NAME, folders[0])

    thread = threading.Thread(target=register_slow)
    thread.start()
    while not open_registry(registry_uri)._list_keys(NAME + "/"):  # the slow one has claimed v1
        threading.Event().wait(0.01)
    told["fast"] = fast.register(NAME, folders[1])
    fast_done.set()
    thread.join(timeout=60)

    assert (told["slow"], told["fast"]) == ("v1", "v2")
    assert open_registry(registry_uri).aliases(NAME)["latest"] == "v2"
