"""Imports inside functions only at the edges (DESIGN.md "Layout").

The library under src/assay imports the project's own modules at module level, so a cycle shows
at import time instead of hiding behind a function. Only the edges import inside functions:
the CLI (``cli.py``, ``commands/``), which keeps ``assay --help`` fast by loading the library a
command needs when it runs. (KFP component bodies and the server entry points live outside
src/assay and are edges too.)

A library function may still import a third-party module that is heavy or optional (an extra
that may be missing), named in ``HEAVY_OR_OPTIONAL``: so that importing the library does not
load PyMC, matplotlib or an LLM SDK until a fit, a figure or a request needs it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

EDGES = ("cli.py", "commands/")
"""Paths under src/assay (a trailing slash: a whole package) that may import anything anywhere."""

LAZY_PROJECT_IMPORTS: dict[tuple[str, str], str] = {
    ("sim/__init__.py", "assay.sim.server"): "SimServer is a lazy attribute of assay.sim: the "
    "server needs uvicorn and Starlette (the llm extra), the package's config does not",
    ("sim/server.py", "assay.sim.app"): "the app is built on Starlette (the llm extra), "
    "imported when a server starts",
    ("bias/logit_direct.py", "assay.bias.logit_kernel"): "the kernel is numba code; numba (the "
    "bayes extra) loads when a fit compiles it, not when the library is imported",
}
"""The only library functions that import a project module, and why. Keep it small."""

HEAVY_OR_OPTIONAL = frozenset(
    {
        # Bayesian stack (the bayes extra): seconds to import, needed only to fit or report
        "pymc",
        "pytensor",
        "nutpie",
        "arviz",
        "xarray",
        "krippendorff",
        # figures, Ray, Kubernetes, KFP, statsmodels: heavy, needed by one step each
        "matplotlib",
        "ray",
        "kubernetes",
        "kfp",
        "statsmodels",
        # the Docker SDK: only the docker runner talks to an engine
        "docker",
        # the S3 registry's client, loaded when an s3:// registry is opened
        "minio",
        "urllib3",
        # optional extras: serving (KServe and its gRPC, ONNX), LLM SDKs, Redis cache, the simulator
        "grpc",
        "onnxruntime",
        "skl2onnx",
        "kserve",
        "openai",
        "anthropic",
        "together",
        "redis",
        "uvicorn",
        "starlette",
    }
)
"""Third-party packages a library function may import lazily."""

LAZY_THIRD_PARTY: dict[str, frozenset[str]] = {
    # The CLI imports sim.config for its option help; pandas loads when a truth file is read.
    "sim/config.py": frozenset({"pandas"}),
}
"""Further third-party packages one module may import lazily, and why."""


@dataclass(frozen=True)
class FunctionImport:
    path: str  # relative to src/assay
    line: int
    function: str
    module: str  # the imported module, absolute
    project: bool


def _imported_module(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:
        base = package[: len(package) - (node.level - 1)]
        module = ".".join([*base, module] if module else base)
    # ``from assay.sim import server`` imports the module assay.sim.server
    return [f"{module}.{alias.name}" for alias in node.names]


def function_imports(root: Path) -> Iterator[FunctionImport]:
    """Every import statement inside a function body of every module under root/src/assay."""
    base = root / "src" / "assay"
    for path in sorted(base.rglob("*.py")):
        relative = path.relative_to(base).as_posix()
        package = ["assay", *path.relative_to(base).parent.parts]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        seen: set[int] = set()
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in seen:
                    continue
                seen.add(id(node))
                for module in _imported_module(node, package):
                    project = module == "assay" or module.startswith("assay.")
                    yield FunctionImport(relative, node.lineno, function.name, module, project)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes)


def violation(imp: FunctionImport) -> str | None:
    """Why ``imp`` should be at module level, or None when it may stay in the function."""
    if _under(imp.path, EDGES):
        return None
    if imp.project:
        if any(
            path == imp.path and (imp.module == m or imp.module.startswith(m + "."))
            for path, m in LAZY_PROJECT_IMPORTS
        ):
            return None
        return "a project module: import it at module level (fix a cycle, do not hide it)"
    top = imp.module.split(".")[0]
    if top in HEAVY_OR_OPTIONAL or top in LAZY_THIRD_PARTY.get(imp.path, frozenset()):
        return None
    return f"{top} is neither heavy nor optional: import it at module level"


def violations(root: Path) -> tuple[list[str], int]:
    found, checked = [], 0
    for imp in function_imports(root):
        checked += 1
        why = violation(imp)
        if why:
            found.append(
                f"src/assay/{imp.path}:{imp.line}: {imp.function}() imports {imp.module}: {why}"
            )
    return found, checked


def test_library_functions_import_only_heavy_or_optional_packages() -> None:
    found, checked = violations(REPO)
    assert checked > 20, f"only {checked} function-level imports found: is {REPO} the repository?"
    assert not found, "imports inside library functions:\n" + "\n".join(found)


def test_the_allow_lists_name_existing_modules() -> None:
    base = REPO / "src" / "assay"
    for path in (*EDGES, *(p for p, _ in LAZY_PROJECT_IMPORTS), *LAZY_THIRD_PARTY):
        assert (base / path).exists(), f"src/assay/{path} is allow-listed but does not exist"
    assert len(LAZY_PROJECT_IMPORTS) <= 3, "lazy project imports are for edges, not the library"


def _plant(root: Path, relative: str, source: str) -> None:
    path = root / "src" / "assay" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        (
            "bias/fit.py",
            "def fit():\n    from assay.bias.design import prepare\n",
            "src/assay/bias/fit.py:2: fit() imports assay.bias.design.prepare: a project module: "
            "import it at module level (fix a cycle, do not hide it)",
        ),
        (
            "llm/router.py",
            "class Router:\n    async def route(self):\n        from .providers import get\n",
            "src/assay/llm/router.py:3: route() imports assay.llm.providers.get: a project "
            "module: import it at module level (fix a cycle, do not hide it)",
        ),
        (
            "classify/folds.py",
            "def split():\n    import pymc as pm\n    from sklearn import model_selection\n",
            "src/assay/classify/folds.py:3: split() imports sklearn.model_selection: sklearn is "
            "neither heavy nor optional: import it at module level",
        ),
        (
            "data/wdbc.py",
            "def frame():\n    import pandas as pd\n",
            "src/assay/data/wdbc.py:2: frame() imports pandas: pandas is neither heavy nor "
            "optional: import it at module level",
        ),
    ],
)
def test_the_checker_catches_a_planted_violation(
    tmp_path: Path, relative: str, source: str, expected: str
) -> None:
    _plant(tmp_path, "commands/train.py", "def train():\n    from assay.classify import cv\n")
    _plant(tmp_path, "sim/config.py", "def truth():\n    import pandas as pd\n")
    _plant(tmp_path, "bias/report.py", "def figure():\n    import matplotlib.pyplot as plt\n")
    _plant(tmp_path, relative, source)
    found, checked = violations(tmp_path)
    assert found == [expected]
    assert checked >= 4
