"""The bias-study pipeline through kfp.local, started by the real `assay bias-study` CLI with
no keys: a small synthetic corpus, the simulated endpoint started and stopped for the run, the
real SDKs through the LLM layer with Ray fan-out, agreement, the Bayesian fit and the report.
Nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from assay.bias.ratings import RATINGS_COLUMNS

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.integration]

PASSAGES = 60


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, ray_cluster: dict[str, str]) -> Path:
    """The rate step joins the session's Ray (``ray_cluster``) through RAY_ADDRESS, as a step
    joins a KubeRay head in a cluster, instead of paying a Ray start-up of its own."""
    base = tmp_path_factory.mktemp("bias")
    out = base / "run"
    command = [
        str(Path(sys.executable).with_name("assay")), "bias-study",
        "--passages", str(PASSAGES), "--textbooks", "10",
        "--draws", "1000", "--tune", "1000", "--n-boot", "100",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, **ray_cluster}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=base, env=env)
    log = (out / "pipeline.log").read_text()[-4000:] if (out / "pipeline.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert "Diagnostics passed" in done.stdout.replace("\n", " ")
    return out


def test_run_folder_holds_every_artifact(run_dir: Path) -> None:
    for name in ("ratings.parquet", "agreement.json", "posterior.nc", "summary.json",
                 "report.html", "passage_stats.parquet", "study.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    html = (run_dir / "report.html").read_text()
    # forest, raters, conditional PPC, new-passage PPC, textbooks
    assert html.count("data:image/png;base64,") == 5


def test_every_passage_was_rated_by_every_simulated_rater(run_dir: Path) -> None:
    ratings = pd.read_parquet(run_dir / "ratings.parquet")
    assert list(ratings.columns[: len(RATINGS_COLUMNS)]) == list(RATINGS_COLUMNS)
    assert len(ratings) == PASSAGES * 3
    assert set(ratings["rater"]) == {"sim-gpt", "sim-claude", "sim-llama"}
    valid = ratings[ratings["error"].fillna("") == ""]
    assert len(valid) >= 0.9 * len(ratings)  # the simulated raters refuse 0-2% of passages


def test_summary_has_effects_diagnostics_and_recovery(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["diagnostics"]["passed"]
    assert {e["publisher"] for e in summary["publisher_effects"]} == {
        "Aldine Press", "Beacon Learning", "Cardinal House", "Delmar Books", "Evergreen Education"
    }  # fmt: skip
    assert summary["recovery"]["all_covered"], summary["recovery"]
    assert all(
        e["verdict_reference"] and e["verdict_assumption"] for e in summary["publisher_effects"]
    )
    assert summary["predictive_checks"]["new_passages"]["statistics"]
    agreement = json.loads((run_dir / "agreement.json").read_text())
    assert agreement["level_of_measurement"] == "interval" and agreement["alpha"] > 0.3


def test_report_opens_with_a_summary_that_matches_summary_json(run_dir: Path) -> None:
    import re

    summary = json.loads((run_dir / "summary.json").read_text())
    page = (run_dir / "report.html").read_text()
    box = page[page.index('id="summary"') : page.index("</div>", page.index('id="summary"'))]
    assert page.index('id="summary"') < page.index("<h2>Publisher effects")
    for effect in summary["publisher_effects"]:
        top = effect["verdicts"][0]
        number = r"([+-][0-9.]+)"
        pattern = rf"{re.escape(effect['publisher'])}: ([^;]+); {number} \[{number}, {number}\]"
        shown = re.search(pattern, box)
        assert shown is not None, effect["publisher"]
        assert shown.group(1) == effect["verdict"].replace("&", "&amp;")
        numbers = [float(v) for v in shown.groups()[1:]]
        assert numbers == [round(top[k], 3) for k in ("mean", "hdi_low", "hdi_high")]
    checks = summary["predictive_checks"]["new_passages"]
    assert "Holm" in checks["multiplicity"] and "Holm" in box
