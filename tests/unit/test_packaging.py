"""The wheel installs only packages named for assay (no generic ``components``, ``pipelines`` or
``serving`` in site-packages to collide with another distribution's), and ships ``py.typed``.

The wheel is built for real (``uv build``, hatchling as pyproject.toml names it) into tmp_path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import assay

REPO = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is part of the dev virtualenv (make venv)"
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(REPO)],
        check=True,
        timeout=600,
    )
    (wheel,) = out.glob("assay-*.whl")
    return wheel


def test_the_wheel_installs_only_assay_named_packages(tmp_path: Path) -> None:
    names = zipfile.ZipFile(build_wheel(tmp_path)).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {
        "assay",
        "assay_components",
        "assay_pipelines",
        "assay_serving",
        f"assay-{assay.__version__}.dist-info",
    }
    assert "assay/py.typed" in names
    for module in ("assay_serving/classifier.py", "assay_pipelines/training.py"):
        assert module in names
    assert "assay_components/train_models.py" in names
