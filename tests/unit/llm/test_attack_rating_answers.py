"""Attack: a rater answers with JSON nested 1,200 levels deep, or with an enormous answer, to
abort a whole fan-out run (and every resume of it).

The real fan-out (``rate_passages``, in-process path) with the real store; only the provider is
a scripted fake (``_orch_fakes``), because a real model cannot be made to give these answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _orch_fakes import FakeFactory, make_ensemble

from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.llm.cache import MemoryCache
from assay.llm.clock import FakeClock
from assay.obs.metrics_llm import RecordingMetrics

DEEP = '{"score": ' + "[" * 1200 + "]" * 1200 + ', "biased": 0, "confidence": 0.5}'
LONG = json.dumps(
    {"score": 0, "biased": 0, "confidence": 0.5, "explanation": "x" * 50, "pad": " " * 20_000}
)


def passages(n: int) -> pd.DataFrame:
    ids = [f"p{i}" for i in range(n)]
    return pd.DataFrame({"passage_id": ids, "text": [f"Text {i}." for i in ids], "publisher": "x"})


def run(store: RatingsStore, factory: FakeFactory) -> object:
    return rate_passages(
        passages(4),
        make_ensemble(),
        store,
        use_ray=False,
        progress=False,
        provider_factory=factory,
        clock=FakeClock(),
        metrics=RecordingMetrics(),
        cache=MemoryCache(),
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(DEEP, "nested too deeply"), (LONG, "longer than")],
    ids=["deep-nesting", "over-long"],
)
def test_hostile_answer_becomes_a_failed_row_and_the_run_and_its_resume_finish(
    tmp_path: Path, answer: str, reason: str
) -> None:
    factory = FakeFactory()
    factory.get("http://a").default = answer
    store = RatingsStore(tmp_path)
    summary = run(store, factory)
    assert summary.rated == 4 and summary.failed == 4  # type: ignore[attr-defined]
    rows = store.latest().values()
    failed = [row for row in rows if row["rater"] == "a"]
    assert len(failed) == 4
    assert all(row["error"].startswith("parse_error") and reason in row["error"] for row in failed)
    assert all(row["score"] is not None for row in rows if row["rater"] == "b")
    resumed = run(store, factory)  # the failures are final: nothing is asked again
    assert resumed.provider_calls == 0  # type: ignore[attr-defined]
