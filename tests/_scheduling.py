"""How the suite is split over pytest-xdist workers (`make test` runs ``pytest -n 4``).

xdist sends every work unit to one worker. A unit is one test, unless tests share a group:
then they run on the same worker, one after another, and share that worker's fixtures. The
rules below group, per module (so a module's tests stay together):

1. modules whose tests use one of the session-wide servers in ``SHARED_SERVERS`` join that
   server's group, so each server starts once in the whole run instead of once per worker;
2. modules with a module- or class-scoped fixture (a pipeline run, a server of their own)
   become a group of their own, so the fixture is built once;
3. every other test is a unit of its own and goes to whichever worker is free.

An ``xdist_group`` mark written in a module wins over these rules (a module can split its
expensive fixtures over two workers that way). Units are handed out in the order of
:func:`heaviest_first`: modules with a test marked ``slow`` first, so the long ones start at
once and the short ones fill the gaps at the end.

xdist's own ``--dist loadgroup`` cannot be used as it is: it appends the group to ``item._nodeid``,
which pytest 9 no longer reads. So the workers, which collect, write each test's group into
the run's shared temporary folder (:func:`publish_groups`), and the controller, which only
sees test ids, schedules by that file (:class:`GroupScheduling`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_SERVERS: dict[str, str] = {
    # the classifier servers (tests/integration/serving/conftest.py) and the tests that reach
    # them through a parametrized endpoint fixture (which may also start the manifest pods)
    "servers": "classifier-servers",
    "classifier_endpoint": "classifier-servers",
    "tokenless_classifier": "classifier-servers",
    "guarded_classifier": "classifier-servers",
    "manifest_classifier": "classifier-servers",
    "manifest_scorer": "classifier-servers",
    "hardened_scorer": "classifier-servers",
}
"""Session fixture -> the group of every module that uses it."""

SHARED_SCOPES = ("module", "class", "package")


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _fixture_scopes(item: pytest.Item) -> dict[str, str]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return {}
    return {name: defs[-1].scope for name, defs in info.name2fixturedefs.items() if defs}


def _group_of_module(items: Iterable[pytest.Item]) -> str | None:
    shared_module_fixture = False
    for item in items:
        for name, scope in _fixture_scopes(item).items():
            if name in SHARED_SERVERS:
                return SHARED_SERVERS[name]
            shared_module_fixture |= scope in SHARED_SCOPES
    return None if not shared_module_fixture else "module"


def _marked_group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def assign_groups(items: list[pytest.Item]) -> dict[str, str]:
    """Each grouped test's id -> its group (rules above); ungrouped tests are left out."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(_module_of(item), []).append(item)
    groups: dict[str, str] = {}
    for module, members in modules.items():
        if any(_marked_group(item) for item in members):  # the module groups its tests itself
            groups.update({i.nodeid: g for i in members if (g := _marked_group(i)) is not None})
            continue
        group = _group_of_module(members)
        if group is not None:
            groups.update({i.nodeid: module if group == "module" else group for i in members})
    return groups


GROUPS_FILE = "xdist-groups.json"


def publish_groups(groups: dict[str, str], run_folder: Path, worker: str) -> None:
    """Write the groups where the controller reads them (every worker writes the same)."""
    partial = run_folder / f"{GROUPS_FILE}.{worker}"
    partial.write_text(json.dumps(groups))
    os.replace(partial, run_folder / GROUPS_FILE)


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with a test's group (from the workers' file) as its scope."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # keep heaviest_first's order
        self.run_folder = Path(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]

    @cached_property
    def groups(self) -> dict[str, str]:
        return dict(json.loads((self.run_folder / GROUPS_FILE).read_text()))

    def _split_scope(self, nodeid: str) -> str:
        return self.groups.get(nodeid, nodeid)


def heaviest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: modules holding a ``slow`` test first, then the rest, each
    part in collection order (a stable sort)."""
    slow_modules = {_module_of(i) for i in items if i.get_closest_marker("slow")}
    items.sort(key=lambda item: _module_of(item) not in slow_modules)
