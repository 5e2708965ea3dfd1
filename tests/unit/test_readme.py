"""The README is for users: short, no development history, and its cost figures computed."""

from __future__ import annotations

import re
from pathlib import Path

from assay.bias.config import BiasStudySettings
from assay.bias.prompt import build_messages
from assay.bias.study import corpus_passages
from assay.llm.ensemble import load_ensemble
from assay.llm.preflight import plan_calls

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_is_short_and_has_no_history() -> None:
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) < 300
    assert not re.search(r"\bissue\s*#?\d+", text, re.IGNORECASE)
    assert not re.search(r"\b[0-9a-f]{7,40}\b", text), "a commit hash"
    head = "\n".join(lines[:60])
    assert "make demo" in head and "make test" in head
    assert not re.search(r"\bbefore\b.*\bafter\b|load average", head)


def test_readme_cost_and_time_are_the_preflights_for_the_default_corpus() -> None:
    defaults = BiasStudySettings()
    frame, _ = corpus_passages(None, defaults.passages, defaults.textbooks, defaults.seed)
    calls = [build_messages(str(text)) for text in frame["text"]]
    plan = plan_calls(load_ensemble("bundled:providers", environ={}), calls)
    text = " ".join(README.read_text().split())
    assert f"{defaults.passages}-passage" in text
    assert f"worst case ${plan.worst_case_usd:.2f}" in text
    assert f"at least {round(plan.min_minutes)} minutes" in text
