"""Every third-party import is a declared dependency, and the installed set is consistent.

The scan reads every ``.py`` file the wheel ships (src/assay and the top-level components/,
pipelines/, serving/) and every test and benchmark with ``ast``, maps each imported third-party
module to the distribution that provides it (``importlib.metadata``), and requires that
distribution in pyproject.toml: shipped code in the core dependencies or in the extra of the part
that imports it, tests and benchmarks in any group (they install everything). A package that
arrives only through another one can vanish with it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("src/assay", "components", "pipelines", "serving")
TEST_CODE = ("tests", "benchmarks")
RUNTIME_EXTRAS = ("serve", "llm", "bayes")

EXTRAS_OF_PART: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("src/assay/serving/", ("serve", "llm")),  # the bias scorer rates through the LLM layer
    ("serving/", ("serve", "llm")),
    ("src/assay/client.py", ("serve",)),
    ("src/assay/llm/", ("llm",)),
    ("src/assay/sim/", ("llm",)),
    ("src/assay/bias/", ("bayes", "llm")),
    ("src/assay/commands/", RUNTIME_EXTRAS),  # each command imports its own part's extra lazily
    ("components/", RUNTIME_EXTRAS),  # the pipeline image installs every runtime extra
    ("pipelines/", RUNTIME_EXTRAS),
)
"""Which extras, besides the core dependencies, shipped code under a path may import from
(first match wins; everything else shipped: the core dependencies only)."""


@dataclass(frozen=True)
class ThirdPartyImport:
    path: Path
    line: int
    module: str

    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def python_files(folders: tuple[str, ...]) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


@cache
def local_module_names() -> frozenset[str]:
    """Top-level names the repository itself provides (its packages and the helper modules
    tests and benchmarks import by bare name from their own folders)."""
    names = {"assay", "components", "pipelines", "serving", "tests", "benchmarks"}
    for path in python_files((*SHIPPED, *TEST_CODE)):
        names.add(path.stem)
        names.update(part for part in path.relative_to(REPO).parts[:-1])
    return frozenset(names)


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every absolute import; ``from x import y`` yields ``x.y`` so
    that a namespace package (``google``, ``kfp``) resolves to the distribution of ``y``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def third_party_imports(folders: tuple[str, ...]) -> Iterator[ThirdPartyImport]:
    local = local_module_names()
    for path in python_files(folders):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported_modules(tree):
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names or top == "__future__" or top in local:
                continue
            yield ThirdPartyImport(path, line, module)


@cache
def top_level_providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@cache
def files_of(distribution: str) -> frozenset[str]:
    return frozenset(str(f) for f in importlib.metadata.distribution(distribution).files or [])


def _provides(distribution: str, module: str) -> bool:
    """Whether ``distribution`` installs the module itself (its .py file or package __init__);
    an extension module counts by its folder."""
    stem = module.replace(".", "/")
    own = {f"{stem}.py", f"{stem}.pyi", f"{stem}/__init__.py", f"{stem}/__init__.pyi"}
    return any(
        f in own or (f.startswith(stem + ".") and f.endswith(".so")) for f in files_of(distribution)
    )


@cache
def distribution_of(module: str) -> str | None:
    """The installed distribution that provides ``module`` (its longest providing prefix)."""
    candidates = top_level_providers().get(module.partition(".")[0], [])
    if len(set(candidates)) <= 1:
        return canonicalize_name(candidates[0]) if candidates else None
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        providers = sorted({c for c in candidates if _provides(c, prefix)})
        if len(providers) == 1:
            return canonicalize_name(providers[0])
    return None


def _names(requirements: list[str]) -> frozenset[str]:
    return frozenset(canonicalize_name(Requirement(r).name) for r in requirements)


@cache
def declared() -> dict[str, frozenset[str]]:
    """Distribution names by group: "core" and each extra of pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": _names(project["dependencies"])}
    for extra, requirements in project["optional-dependencies"].items():
        groups[extra] = _names(requirements)
    return groups


def allowed_groups(path: Path) -> tuple[str, ...]:
    relative = path.relative_to(REPO).as_posix()
    if relative.split("/")[0] in TEST_CODE:
        return tuple(declared())
    for prefix, extras in EXTRAS_OF_PART:
        if relative.startswith(prefix):
            return ("core", *extras)
    return ("core",)


def undeclared(imports: Iterator[ThirdPartyImport]) -> list[str]:
    found = []
    for imp in imports:
        distribution = distribution_of(imp.module)
        groups = allowed_groups(imp.path)
        if distribution is None:
            found.append(f"{imp.where()}: {imp.module} is provided by no installed distribution")
        elif not any(distribution in declared()[group] for group in groups):
            found.append(
                f"{imp.where()}: {imp.module} comes from {distribution}, which pyproject.toml "
                f"does not declare in {' or '.join(groups)}"
            )
    return found


def test_shipped_code_imports_only_declared_distributions() -> None:
    imports = list(third_party_imports(SHIPPED))
    assert len({imp.module.partition(".")[0] for imp in imports}) > 30  # the scan sees them all
    assert undeclared(iter(imports)) == []


def test_tests_and_benchmarks_import_only_declared_distributions() -> None:
    imports = list(third_party_imports(TEST_CODE))
    assert len(imports) > 100
    assert undeclared(iter(imports)) == []


def test_the_scan_flags_a_transitive_only_import(tmp_path: Path) -> None:
    """``aiohttp`` is installed (kserve needs it) but shipped code may not rely on that."""
    planted = REPO / "src" / "assay" / "obs" / "planted.py"
    imports = [ThirdPartyImport(planted, 1, "aiohttp.web"), ThirdPartyImport(planted, 2, "numpy")]
    found = undeclared(iter(imports))
    assert found == [
        "src/assay/obs/planted.py:1: aiohttp.web comes from aiohttp, which pyproject.toml does "
        "not declare in core"
    ]


def test_namespace_packages_resolve_to_the_providing_distribution() -> None:
    assert distribution_of("google.rpc.status_pb2") == "googleapis-common-protos"
    assert distribution_of("google.protobuf.any_pb2") == "protobuf"
    assert distribution_of("kfp.dsl") == "kfp"
    assert distribution_of("kfp.kubernetes") == "kfp-kubernetes"
    assert distribution_of("yaml") == "pyyaml"


def test_runtime_only_dependencies_are_declared() -> None:
    """numba is never imported by assay, yet nutpie's default backend compiles with it."""
    assert "numba" in declared()["bayes"]


def test_installed_distributions_are_consistent() -> None:
    """``uv pip check`` (pip's ``check`` when uv is absent) on this virtualenv."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    command = (
        [uv, "pip", "check", "--python", sys.executable]
        if uv
        else [sys.executable, "-m", "pip", "check"]
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
