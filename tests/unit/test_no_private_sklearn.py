"""No project code reaches into scikit-learn's private modules or classes.

The issue's check, as a test: the ``GREP`` pattern (``grep -rn`` over src, serving, components
and pipelines) finds nothing; and, by parsing every module, no import names a private
scikit-learn module or object (``from sklearn.x import _y``, ``import sklearn._x``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("src", "serving", "components", "pipelines")
GREP = re.compile(r"sklearn\..*\._|_SigmoidCalibration|_CalibratedClassifier")


def _python_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def _private_sklearn_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sklearn":
            parts = (node.module or "").split(".")
            names = [alias.name for alias in node.names]
            found += [f"{node.module}.{n}" for n in names if n.startswith("_")]
            if any(part.startswith("_") for part in parts):
                found.append(str(node.module))
        elif isinstance(node, ast.Import):
            found += [
                alias.name
                for alias in node.names
                if alias.name.split(".")[0] == "sklearn"
                and any(part.startswith("_") for part in alias.name.split("."))
            ]
    return found


def test_grep_finds_no_private_sklearn_name() -> None:
    files = _python_files()
    assert len(files) > 100, f"only {len(files)} files under {FOLDERS}: is {REPO} the repository?"
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if GREP.search(line)
    ]
    assert hits == []


def test_no_module_imports_a_private_sklearn_module_or_object() -> None:
    offenders = {
        str(path.relative_to(REPO)): found
        for path in _python_files()
        if (found := _private_sklearn_imports(ast.parse(path.read_text())))
    }
    assert offenders == {}


def test_the_checks_catch_what_they_look_for() -> None:
    """Both checks flag the imports this project used to have."""
    old = "from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration\n"
    assert GREP.search(old)
    assert _private_sklearn_imports(ast.parse(old)) == ["sklearn.calibration._SigmoidCalibration"]
    internal = "import sklearn.utils._param_validation\n"
    assert GREP.search(internal)
    assert _private_sklearn_imports(ast.parse(internal)) == ["sklearn.utils._param_validation"]
