"""images/Dockerfile, checked by reading it: there is no Docker engine here to build it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata

import pytest
from manifest_support import REPO_ROOT

pytestmark = pytest.mark.manifests

DOCKERFILE = REPO_ROOT / "images" / "Dockerfile"
FIRST_PARTY = {"assay", "components", "pipelines", "serving"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line.rstrip("\\").strip() if current else line.rstrip("\\").strip()
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _args() -> dict[str, str]:
    return dict(arg.split("=", 1) for kind, arg in _instructions() if kind == "ARG" and "=" in arg)


def test_multi_stage_on_a_pinned_python_slim_bookworm_base() -> None:
    froms = [arg for kind, arg in _instructions() if kind == "FROM"]
    assert len(froms) >= 2
    base = _args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    for line in froms:
        image = line.split()[0].replace("${PYTHON_IMAGE}", base)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), line
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE.read_text()


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [arg for kind, arg in _instructions() if kind == "USER"]
    assert users, "no USER instruction: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, users[-1]


def test_installs_the_lock_then_the_project_without_resolving() -> None:
    runs = [arg for kind, arg in _instructions() if kind == "RUN"]
    lock = next(i for i, r in enumerate(runs) if "-r requirements.lock" in r)
    project = next(i for i, r in enumerate(runs) if "--no-deps ." in r)
    assert lock < project


def test_copies_every_package_the_wheel_ships() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {arg.split()[0] for kind, arg in _instructions() if kind == "COPY"}
    for package in packages:
        assert package.split("/")[0] in copied, package
    for needed in ("requirements.lock", "pyproject.toml", "README.md"):
        assert any(needed in arg for kind, arg in _instructions() if kind == "COPY"), needed
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for needed in ["requirements.lock", "pyproject.toml", "README.md", "src", *packages]:
        assert needed.split("/")[0] not in ignored, f".dockerignore drops {needed}"


def test_exposes_the_server_ports_and_starts_a_real_module() -> None:
    exposed = {p for kind, arg in _instructions() if kind == "EXPOSE" for p in arg.split()}
    assert {"8080", "8081"} <= exposed
    cmd = next(arg for kind, arg in _instructions() if kind == "CMD")
    module = ast.literal_eval(cmd)[0]
    assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_no_latest_tag_anywhere_in_images() -> None:
    for path in (REPO_ROOT / "images").iterdir():
        assert ":latest" not in path.read_text(), path


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for folder in ("serving", "src/assay/serving", "components", "pipelines"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names - FIRST_PARTY - set(sys.stdlib_module_names)


def test_the_lock_holds_every_distribution_the_servers_and_components_import() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text()
    pinned = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in lock.splitlines()
        if "==" in line and not line.startswith(" ")
    }
    distributions = metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"kfp", "kserve", "numpy"} <= imports
    for name in sorted(imports):
        dists = distributions.get(name)
        assert dists, f"{name} is imported but no installed distribution provides it"
        assert any(re.sub(r"[-_.]+", "-", d).lower() in pinned for d in dists), (
            f"{name} ({dists}) is not in requirements.lock"
        )
