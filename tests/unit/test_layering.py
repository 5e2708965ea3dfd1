"""Dependencies point one way (DESIGN.md "Layout"): every import, at module level or inside a
function, of every module under src/assay and the top-level components/, pipelines/, serving/.

    cli, commands                                     entry points
      -> workflow, pipelines, components, serving     wiring, KFP, model servers
      -> bias, classify, llm, registry, storage,      the library's domain parts
         data, sim, deploy, client, parallel
      -> obs, errors, config                          foundations

A part may import its own modules and any part of a lower layer; inside a layer only the edges in
``SAME_LAYER`` are allowed (``bias -> llm`` yes, ``llm -> bias`` never). ``sim`` may import only
the prompt format of ``bias`` (``assay.bias.prompt``), and ``bias`` never imports ``sim``. The
library never imports the top-level components/, pipelines/, serving/ packages; only the commands
may (they hand pipeline objects to the workflow). ``workflow`` is generic: it imports neither the
pipelines and components nor the studies (``NEVER``). ``assay train`` reaches the CV work units by
a chain of imports that never climbs a layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOP_LEVEL_PACKAGES = ("components", "pipelines", "serving")
"""The card's top-level folders; each holds one package, ``assay_<folder>`` (its import name)."""

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "commands"}),
    frozenset({"workflow", "pipelines", "components", "serving", "assay.serving"}),
    frozenset(
        {
            "bias",
            "classify",
            "llm",
            "registry",
            "storage",
            "data",
            "sim",
            "deploy",
            "client",
            "parallel",
        }
    ),
    frozenset({"obs", "errors", "config", "stats", "tested_versions"}),
)
"""Highest first: a part may import any part of a later (lower) layer."""

SAME_LAYER: dict[str, frozenset[str]] = {
    "cli": frozenset({"commands"}),
    "pipelines": frozenset({"components"}),
    "serving": frozenset({"assay.serving"}),  # the thin `python -m assay_serving.X` entry points
    # storage (s3:// objects through the minio client) is the bottom of its layer: it imports no
    # other part of it, and the parts that read or write s3:// locations import it.
    "bias": frozenset({"llm", "data", "parallel", "storage"}),
    "classify": frozenset({"data", "parallel", "registry", "storage"}),
    "llm": frozenset({"parallel", "storage"}),
    "registry": frozenset({"storage"}),
    "deploy": frozenset({"registry"}),
    "client": frozenset({"data"}),
    "sim": frozenset({"bias"}),
    "config": frozenset({"errors"}),
    "tested_versions": frozenset({"errors"}),
    "obs": frozenset({"errors", "config"}),
}
"""Allowed imports between parts of the same layer."""

NEVER: dict[str, frozenset[str]] = {
    "workflow": frozenset({"pipelines", "components", "classify", "bias"}),
}
"""Parts a part must not import even below it: the workflow runs pipelines it is handed and
knows no study."""

ONLY_MODULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("sim", "bias"): ("assay.bias.prompt",),
}
"""Where an edge is allowed for some modules of the imported part only."""


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    importer: str
    imported: str

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] in ("src", *TOP_LEVEL_PACKAGES):
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def project_modules(root: Path) -> Iterator[Path]:
    for base in (root / "src" / "assay", *(root / name for name in TOP_LEVEL_PACKAGES)):
        if base.is_dir():
            yield from sorted(base.rglob("*.py"))


def _resolve_relative(node: ast.ImportFrom, importer: str, package: bool) -> str:
    parts = importer.split(".")
    base = parts if package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import statement in the file (module level, in functions, under TYPE_CHECKING),
    and ``importlib.import_module`` calls with a constant name."""
    importer = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = (
                _resolve_relative(node, importer, is_package(path))
                if node.level
                else node.module or ""
            )
            # ``from assay.bias import prompt`` imports the module assay.bias.prompt
            targets = [f"{module}.{alias.name}" for alias in node.names] or [module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]
        for target in targets:
            yield Import(path, node.lineno, importer, target)


def part_of(module: str) -> str | None:
    """The layered part a module belongs to (None: not a project module)."""
    parts = module.split(".")
    folder = parts[0].removeprefix("assay_")
    if parts[0] != folder and folder in TOP_LEVEL_PACKAGES:
        return folder
    if parts[0] != "assay" or len(parts) < 2:
        return None
    return "assay.serving" if parts[1] == "serving" else parts[1]


def layer_of(part: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if part in layer:
            return rank
    raise AssertionError(f"part {part!r} has no layer: add it to LAYERS in {__file__}")


def violation(imp: Import) -> str | None:
    """Why ``imp`` points the wrong way, or None when it is allowed."""
    source, target = part_of(imp.importer), part_of(imp.imported)
    if source is None or target is None or source == target:
        return None
    if target in NEVER.get(source, frozenset()):
        return f"{source} must not import {target}"
    only = ONLY_MODULES.get((source, target))
    if only is not None and not any(
        imp.imported == m or imp.imported.startswith(m + ".") for m in only
    ):
        return f"{source} may import only {', '.join(only)} of {target}"
    below = layer_of(target) > layer_of(source)
    if below or target in SAME_LAYER.get(source, frozenset()):
        return None
    return f"{source} must not import {target}"


def violations(root: Path) -> tuple[list[str], int]:
    """``file:line: importer imports imported (why)`` for every wrong-way import under root,
    and how many project imports were checked."""
    found, checked = [], 0
    for path in project_modules(root):
        for imp in imports_of(path, root):
            if part_of(imp.imported) is None:
                continue
            checked += 1
            why = violation(imp)
            if why:
                found.append(f"{imp.where(root)}: {imp.importer} imports {imp.imported} ({why})")
    return found, checked


def test_imports_point_one_way() -> None:
    found, checked = violations(REPO)
    assert checked > 200, f"only {checked} project imports found: is {REPO} the repository?"
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_every_part_of_the_library_has_a_layer() -> None:
    for path in project_modules(REPO):
        part = part_of(module_name(path, REPO))
        if part is not None and module_name(path, REPO) != "assay":
            layer_of(part)


def _plant(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        (
            "src/assay/llm/leak.py",
            "import json\n\n\ndef rate():\n    from assay.bias.store import RatingsStore\n",
            "src/assay/llm/leak.py:5: assay.llm.leak imports assay.bias.store.RatingsStore "
            "(llm must not import bias)",
        ),
        (
            "src/assay/bias/edge.py",
            "from assay.sim import SimConfig\n",
            "src/assay/bias/edge.py:1: assay.bias.edge imports assay.sim.SimConfig "
            "(bias must not import sim)",
        ),
        (
            "src/assay/sim/grade.py",
            "from assay.bias.prompt import parse_rating\nfrom assay.bias import store\n",
            "src/assay/sim/grade.py:2: assay.sim.grade imports assay.bias.store "
            "(sim may import only assay.bias.prompt of bias)",
        ),
        (
            "src/assay/workflow/run.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import assay_pipelines\n",
            "src/assay/workflow/run.py:3: assay.workflow.run imports assay_pipelines "
            "(workflow must not import pipelines)",
        ),
        (
            "src/assay/workflow/glue.py",
            "def run():\n    from assay.classify.stages import run_training\n",
            "src/assay/workflow/glue.py:2: assay.workflow.glue imports "
            "assay.classify.stages.run_training (workflow must not import classify)",
        ),
        (
            "src/assay/errors.py",
            "from .obs import logging\n",
            "src/assay/errors.py:1: assay.errors imports assay.obs.logging "
            "(errors must not import obs)",
        ),
    ],
)
def test_the_checker_catches_a_planted_violation(
    tmp_path: Path, relative: str, source: str, expected: str
) -> None:
    _plant(tmp_path, "src/assay/__init__.py", "")
    _plant(tmp_path, "src/assay/bias/prompt.py", "from assay.llm.errors import LLMError\n")
    _plant(tmp_path, "src/assay/sim/rater.py", "from assay.bias.prompt import build_messages\n")
    _plant(tmp_path, relative, source)
    found, checked = violations(tmp_path)
    assert found == [expected]
    assert checked >= 3


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> project modules it imports (an imported name resolves to its module)."""
    modules = {module_name(path, root): path for path in project_modules(root)}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(path, root):
            target = imp.imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def downward_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest import chain from ``start`` to ``goal`` that never climbs a layer."""
    rank = {m: layer_of(p) for m in graph if (p := part_of(m)) is not None and m != "assay"}
    previous: dict[str, str] = {}
    frontier, seen = [start], {start}
    while frontier:
        following = []
        for module in frontier:
            if module == goal:
                chain = [goal]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return chain[::-1]
            for target in sorted(graph.get(module, ())):
                if target in seen or target not in rank or rank[target] < rank[module]:
                    continue
                seen.add(target)
                previous[target] = module
                following.append(target)
        frontier = following
    return None


def test_assay_train_reaches_the_cv_units_through_the_pipeline_going_down() -> None:
    graph = import_graph(REPO)
    via = ["assay.commands.train", "assay_pipelines.training", "assay_components.train_models",
           "assay.classify.steps", "assay.classify.units"]  # fmt: skip
    for start, goal in pairwise(via):
        chain = downward_path(graph, start, goal)
        assert chain is not None, f"no downward import path from {start} to {goal}"
        for importer, imported in pairwise(chain):
            assert violation(Import(Path(importer), 0, importer, imported)) is None, chain


def test_downward_path_refuses_to_climb(tmp_path: Path) -> None:
    _plant(tmp_path, "src/assay/__init__.py", "")
    _plant(tmp_path, "src/assay/classify/units.py", "")
    _plant(tmp_path, "src/assay/classify/steps.py", "from assay.workflow import run\n")
    _plant(tmp_path, "src/assay/workflow/run.py", "from assay.classify import units\n")
    graph = import_graph(tmp_path)
    assert downward_path(graph, "assay.workflow.run", "assay.classify.units") is not None
    assert downward_path(graph, "assay.classify.steps", "assay.classify.units") is None
