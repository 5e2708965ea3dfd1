"""An untested version of a library whose internals assay uses stops assay with a clear error.

The installed version is faked (``assay.tested_versions.installed_version`` monkeypatched): the
releases these tests pretend to have do not exist yet, which is the point. Everything else is
real: the ranges come from assay's installed metadata, and the checks run at the real entry
points (``assay train``, kfp.local execution, the classifier server's ``main``, an SDK provider).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from assay import tested_versions
from assay.tested_versions import (
    OVERRIDE_ENV,
    WHAT_ASSAY_RELIES_ON,
    UntestedVersionError,
    UntestedVersionWarning,
    require_tested,
)

REPO = Path(__file__).resolve().parents[2]
UNTESTED = {
    "kserve": "0.99.0",
    "kfp": "2.99.0",
    "scikit-learn": "1.99.0",
    "openai": "9.0.0",
    "anthropic": "9.0.0",
    "together": "9.0.0",
}


@pytest.fixture
def pretend_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """``fake[name] = version`` makes assay see that version of ``name`` installed."""
    fake: dict[str, str] = {}
    real = tested_versions.installed_version
    monkeypatch.setattr(
        tested_versions, "installed_version", lambda name: fake.get(name) or real(name)
    )
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    yield fake


def declared_specifiers(name: str) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"]]
    for requirements in project["optional-dependencies"].values():
        lines += requirements
    return {str(Requirement(r).specifier) for r in lines if Requirement(r).name == name}


@pytest.mark.parametrize("name", sorted(WHAT_ASSAY_RELIES_ON))
def test_each_coupled_package_has_an_upper_bound_read_from_pyproject(name: str) -> None:
    tested = tested_versions.tested_range(name)
    assert {str(tested)} == declared_specifiers(name)
    assert any(spec.operator == "<" for spec in tested)


@pytest.mark.parametrize("name", sorted(WHAT_ASSAY_RELIES_ON))
def test_the_installed_versions_are_the_tested_ones(name: str) -> None:
    require_tested(name)  # the lock's versions: nothing raised


@pytest.mark.parametrize("name", sorted(UNTESTED))
def test_an_untested_version_is_refused_with_what_and_why(
    name: str, pretend_installed: dict[str, str]
) -> None:
    pretend_installed[name] = UNTESTED[name]
    with pytest.raises(UntestedVersionError) as raised:
        require_tested(name)
    message = str(raised.value)
    assert f"{name} {UNTESTED[name]} is installed" in message
    assert f"{name}{tested_versions.tested_range(name)}" in message
    assert WHAT_ASSAY_RELIES_ON[name] in message
    assert f"{OVERRIDE_ENV}={name}" in message


def test_an_older_version_below_the_range_is_refused(pretend_installed: dict[str, str]) -> None:
    pretend_installed["kserve"] = "0.15.0"
    with pytest.raises(UntestedVersionError, match=r"kserve 0\.15\.0 is installed"):
        require_tested("kserve")


def test_a_prerelease_of_the_next_version_is_refused(pretend_installed: dict[str, str]) -> None:
    pretend_installed["kfp"] = "2.17.0rc1"
    with pytest.raises(UntestedVersionError, match=r"kfp 2\.17\.0rc1"):
        require_tested("kfp")


def test_the_override_names_the_packages_it_lets_through(
    pretend_installed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pretend_installed.update(kserve="0.99.0", kfp="2.99.0")
    monkeypatch.setenv(OVERRIDE_ENV, "KServe")
    with pytest.warns(UntestedVersionWarning, match=r"kserve 0\.99\.0"):
        require_tested("kserve")
    with pytest.raises(UntestedVersionError, match="kfp"):
        require_tested("kfp")
    monkeypatch.setenv(OVERRIDE_ENV, "all")
    with pytest.warns(UntestedVersionWarning, match="kfp"):
        require_tested("kfp")


def test_a_package_that_is_not_installed_is_left_to_its_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tested_versions, "installed_version", lambda name: None)
    require_tested("together")


def test_local_training_stops_before_any_step_runs(
    pretend_installed: dict[str, str], tmp_path: Path
) -> None:
    from assay.cli import app

    pretend_installed["scikit-learn"] = "1.99.0"
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--folds", "2", "--repeats", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())
    assert "scikit-learn1.99.0isinstalled" in text
    assert not (out / "kfp").exists()


def test_kfp_local_execution_stops_before_kfp_runs(
    pretend_installed: dict[str, str], tmp_path: Path
) -> None:
    from assay.workflow.kfp_local import execute

    pretend_installed["kfp"] = "2.99.0"
    with pytest.raises(UntestedVersionError, match=r"kfp 2\.99\.0"):
        execute(pipeline=None, arguments={}, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_classifier_server_refuses_to_start(
    pretend_installed: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from assay_serving.classifier import main

    pretend_installed["kserve"] = "0.99.0"
    with pytest.raises(SystemExit) as exited:
        main([f"--model_uri={tmp_path / 'no-model'}", "--http_port=0", "--grpc_port=0"])
    assert exited.value.code == 2
    assert "kserve 0.99.0 is installed" in capsys.readouterr().err


def test_an_llm_provider_refuses_an_untested_sdk(pretend_installed: dict[str, str]) -> None:
    from assay.llm.providers.openai import OpenAIProvider

    pretend_installed["openai"] = "9.0.0"
    with pytest.raises(UntestedVersionError, match=r"openai 9\.0\.0"):
        OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="test", timeout_s=1.0)
