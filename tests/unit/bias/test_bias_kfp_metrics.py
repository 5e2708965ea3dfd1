"""The KFP metrics the bias components log, derived from summary.json and agreement.json:
read defensively (missing, null or non-numeric entries are left out, never invented)."""

from __future__ import annotations

import json
from pathlib import Path

from assay.bias.steps import agreement_metrics, fit_metrics, study_metrics

SUMMARY = {
    "diagnostics": {
        "rhat_max": 1.004,
        "ess_bulk_min": 812.5,
        "ess_tail_min": 640.0,
        "divergences": 0,
        "bfmi_min": 0.9,
        "passed": True,
    },
    "publisher_effects": [
        {"publisher": "Aldine Press", "mean": 0.41, "hdi_low": 0.1, "hdi_high": 0.7},
        {"publisher": "Beacon Learning", "mean": -0.2, "hdi_low": None, "hdi_high": "n/a"},
        {"mean": 9.0},  # no publisher name: nothing to label it with
    ],
}


def test_fit_metrics_hold_diagnostics_and_each_publishers_effect() -> None:
    assert fit_metrics(SUMMARY) == {
        "rhat_max": 1.004,
        "ess_bulk_min": 812.5,
        "ess_tail_min": 640.0,
        "divergences": 0.0,
        "diagnostics_passed": 1.0,
        "effect/Aldine Press/mean": 0.41,
        "effect/Aldine Press/hdi_low": 0.1,
        "effect/Aldine Press/hdi_high": 0.7,
        "effect/Beacon Learning/mean": -0.2,
    }


def test_a_summary_without_the_expected_keys_yields_what_it_has() -> None:
    assert fit_metrics({}) == {}
    assert fit_metrics({"diagnostics": {"rhat_max": float("nan"), "passed": False}}) == {
        "diagnostics_passed": 0.0
    }
    assert agreement_metrics({"alpha": 0.62, "ci_low": None, "ci_high": True}) == {
        "krippendorff_alpha": 0.62
    }


def test_study_metrics_combine_the_run_folders_files(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    (tmp_path / "agreement.json").write_text(
        json.dumps({"alpha": 0.62, "ci_low": 0.55, "ci_high": 0.69})
    )
    metrics = study_metrics(tmp_path)
    assert metrics["krippendorff_ci_low"] == 0.55 and metrics["krippendorff_ci_high"] == 0.69
    assert metrics["rhat_max"] == 1.004 and metrics["effect/Aldine Press/mean"] == 0.41
    assert study_metrics(tmp_path / "empty") == {}
