"""assay's version is written once, in pyproject.toml; everything else derives it.

The kustomization is the one other file that must repeat it (a kustomization cannot read it);
tests/manifests/test_manifests_names.py checks that copy.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

from typer.testing import CliRunner

import assay
from assay.cli import app
from assay.config import CLASSIFIER_IMAGE, PIPELINE_IMAGE

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
MAY_REPEAT_IT = {"pyproject.toml", "manifests/base/kustomization.yaml", "CHANGELOG.md"}
SEARCHED = ("src", "components", "pipelines", "serving", "images", "manifests", "tests", "Makefile")


def test_the_code_reports_pyprojects_version() -> None:
    assert assay.__version__ == VERSION
    result = CliRunner().invoke(app, ["--version"])
    assert result.output.strip() == f"assay {VERSION}"
    assert PIPELINE_IMAGE.endswith(f":{VERSION}")
    assert CLASSIFIER_IMAGE.endswith(f":{VERSION}")


def _text_files() -> list[Path]:
    found: list[Path] = []
    for name in SEARCHED:
        path = REPO / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        found += [p for p in candidates if p.is_file() and p.suffix not in {".lock", ".pyc"}]
    return found


def test_no_other_file_writes_the_version() -> None:
    quoted = (f'"{VERSION}"', f":{VERSION}", f"'{VERSION}'", f"== {VERSION}")
    repeats = []
    for path in _text_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in MAY_REPEAT_IT:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        repeats += [relative for q in quoted if q in text]
    assert repeats == []


def test_make_image_tags_both_images_with_the_version(tmp_path: Path) -> None:
    """images/build.sh with a stand-in engine that records its arguments (no image is built)."""
    log = tmp_path / "engine.log"
    engine = tmp_path / "engine"
    engine.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    engine.chmod(engine.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "ENGINE": str(engine), "BASE": "example.org/python:3.11"}
    env.pop("IMAGE", None)
    env.pop("CLASSIFIER_IMAGE", None)
    subprocess.run(["bash", "images/build.sh"], cwd=REPO, env=env, check=True, timeout=60)
    builds = [line.split() for line in log.read_text().splitlines() if line.startswith("build")]
    tags = [words[words.index("-t") + 1] for words in builds]
    assert tags == [CLASSIFIER_IMAGE, PIPELINE_IMAGE]
