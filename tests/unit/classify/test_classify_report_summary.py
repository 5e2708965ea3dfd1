"""The classifier report opens with a summary whose every claim is metrics.json's."""

from __future__ import annotations

import json
import re
from typing import Any

from assay.classify.report_summary import summary_facts, summary_lines
from assay.classify.steps import markdown_summary


def _metrics(trained: dict[str, Any]) -> dict[str, Any]:
    return json.loads((trained["root"] / "eval" / "metrics.json").read_text())


def test_summary_facts_are_the_held_out_figures_of_metrics_json(trained: dict[str, Any]) -> None:
    metrics = _metrics(trained)
    facts = metrics["summary"]
    held = metrics["clinical_threshold"]["held_out"]
    target = metrics["clinical_threshold"]["target_sensitivity"]
    assert facts["selected_model"] == metrics["selected_model"] == metrics["selection"]["selected"]
    for name in ("sensitivity", "specificity"):
        for key in ("mean", "ci_low", "ci_high"):
            assert facts[f"{name}_heldout"][key] == held[name][key]
    assert facts["served_threshold"] == metrics["clinical_threshold"]["threshold"]
    assert facts["sensitivity_target"] == (
        "met" if held["sensitivity"]["mean"] >= target else "not met"
    )
    assert facts == summary_facts(metrics)


def test_report_leads_with_the_summary(trained: dict[str, Any]) -> None:
    page = (trained["root"] / "eval" / "report.html").read_text()
    facts = _metrics(trained)["summary"]
    box = page.index('id="summary"')
    assert box < page.index("<h2>Leaderboard")
    sensitivity = facts["sensitivity_heldout"]
    shown = re.search(r"Held-out sensitivity ([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", page)
    assert shown is not None
    assert [float(v) for v in shown.groups()] == [
        round(sensitivity[k], 3) for k in ("mean", "ci_low", "ci_high")
    ]
    verdict = re.search(r"against the target ([0-9.]+): (MET|NOT MET)", page)
    assert verdict is not None and verdict.group(2) == facts["sensitivity_target"].upper()
    assert "indistinguishable" not in page.lower()
    assert "@0.5" in page and "not at the served threshold" in page


def test_not_met_is_said_when_the_held_out_mean_misses_the_target(trained: dict[str, Any]) -> None:
    """The demo's case: held-out sensitivity 0.974 [0.921, 0.992] against 0.98."""
    metrics = _metrics(trained)
    held = metrics["clinical_threshold"]["held_out"]
    held["sensitivity"].update({"mean": 0.974, "ci_low": 0.921, "ci_high": 0.992})
    metrics["clinical_threshold"]["target_sensitivity"] = 0.98
    facts = summary_facts(metrics)
    assert facts["sensitivity_target"] == "not met"
    text = " ".join(summary_lines(facts))
    assert "0.974 [0.921, 0.992] against the target 0.98: NOT MET" in text


def test_summary_md_labels_the_cutoff_metrics(trained: dict[str, Any]) -> None:
    text = markdown_summary({**trained["evaluation"], "summary": _metrics(trained)["summary"]})
    assert "against the target" in text
    assert "| sensitivity @0.5 |" in text and "| sensitivity |" not in text
    assert "NOT at the served threshold" in text
