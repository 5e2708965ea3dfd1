"""Rendered kustomize targets, shared by the manifest tests and the container harness.

No cluster exists here: a target is rendered with `kubectl kustomize` (or a standalone
`kustomize`), once per session, and parsed afresh for each caller.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

# kustomize targets: the root (deploys dev), both overlays and the two variants.
TARGETS: dict[str, Path] = {
    "root": REPO_ROOT,
    "dev": REPO_ROOT / "manifests" / "overlays" / "dev",
    "prod": REPO_ROOT / "manifests" / "overlays" / "prod",
    "prod-raw-hpa": REPO_ROOT / "manifests" / "overlays" / "prod-raw-hpa",
    "dev-sklearnserver": REPO_ROOT / "manifests" / "overlays" / "dev-sklearnserver",
}

Obj = dict[str, Any]


def _kustomize_command(target: Path) -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(target)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(target)]
    pytest.skip("neither kubectl nor kustomize is on PATH: cannot render the manifests")


def _kustomize(target: Path) -> str:
    result = subprocess.run(
        _kustomize_command(target), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kustomize failed for {target}:\n{result.stderr}"
    return result.stdout


@cache
def _render(target: Path) -> tuple[str, ...]:
    return (_kustomize(target),)


def _parse(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(name: str) -> list[Obj]:
    """The objects of one kustomize target, freshly parsed (callers may mutate them)."""
    (text,) = _render(TARGETS[name])
    return _parse(text)


def render_path(target: Path) -> list[Obj]:
    """The objects of the kustomization in ``target`` (e.g. an edited copy of manifests/ in
    tmp_path), rendered now: never cached, the files may have changed."""
    return _parse(_kustomize(target))


def generated_name(name: str, rendered: str) -> bool:
    """Whether ``rendered`` is what a generator called ``name`` renders: the name itself (no
    hash suffix) or the name with kustomize's content hash ("-" and 10 characters)."""
    return (
        rendered == name or re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", rendered) is not None
    )


def find_generated(objs: list[Obj], kind: str, name: str) -> Obj:
    """The one ``kind`` the generator ``name`` rendered, with or without its hash suffix."""
    matches = [o for o in objs if o["kind"] == kind and generated_name(name, o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one generated {kind}/{name}, found {len(matches)}"
    return matches[0]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
