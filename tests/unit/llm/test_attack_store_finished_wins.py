"""Attack: run A stores a finished rating, then run B (started from the same store before A
wrote, so it still saw the key as to do) stores a timeout for the same key. Neither store may
let the timeout replace the rating: ``latest()`` keeps the score and a resumed run does not pay
for the rating again. The same rule for the local folder and for s3:// (moto's S3 server on
127.0.0.1, the real ``minio`` client)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest
from _orch_fakes import FakeFactory, make_ensemble

from assay.bias.rating.fanout import rate_passages
from assay.bias.rating.rater import rating_key
from assay.bias.store import BaseRatingsStore, RatingsStore, S3RatingsStore
from assay.llm.cache import MemoryCache
from assay.llm.clock import FakeClock
from assay.obs.metrics_llm import RecordingMetrics
from assay.storage.s3 import ObjectStore

KEY = rating_key("p1", "a", "model-a")
PASSAGES = pd.DataFrame({"passage_id": ["p1"], "text": ["Taxes rose."], "publisher": ["P"]})


def rating(**fields: object) -> dict[str, object]:
    base = {"passage_id": "p1", "publisher": "P", "rater": "a", "model": "model-a", "key": KEY}
    return {**base, **fields}


SCORE = rating(score=2.0, error="", cost=0.004)
TIMEOUT = rating(score=None, error="timeout: no answer in 30 s", cost=0.0)
PARSE_ERROR = rating(score=None, error="parse_error: not JSON", cost=0.001)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path):
    """A factory of store objects over one location: each call is another run's store."""
    if request.param == "local":
        return lambda: RatingsStore(tmp_path / "store")
    request.getfixturevalue("minio_env")
    bucket = f"wins-{uuid.uuid4().hex[:8]}"
    ObjectStore().client.make_bucket(bucket)
    return lambda: S3RatingsStore(f"s3://{bucket}/ratings")


def test_a_later_timeout_does_not_replace_a_stored_rating(open_store) -> None:
    run_a, run_b = open_store(), open_store()
    run_a.append([SCORE])
    run_b.append([TIMEOUT])
    latest = open_store().latest()
    assert latest[KEY]["score"] == 2.0 and not latest[KEY]["error"]
    assert KEY in open_store().finished_keys()
    assert open_store().to_frame()["score"].tolist() == [2.0]


def test_a_resumed_run_does_not_pay_for_the_rating_again(open_store) -> None:
    open_store().append([SCORE])
    open_store().append([TIMEOUT])
    factory = FakeFactory()
    summary = rate_passages(
        PASSAGES,
        make_ensemble({"a": ["http://a"]}),
        open_store(),
        use_ray=False,
        progress=False,
        cache=MemoryCache(),
        provider_factory=factory,
        clock=FakeClock(),
        metrics=RecordingMetrics(),
    )
    assert factory.calls == 0 and summary.skipped == 1 and summary.cost_usd == 0.0


def test_the_last_finished_row_wins_and_a_retried_failure_is_replaced(open_store) -> None:
    store: BaseRatingsStore = open_store()
    store.append([TIMEOUT])
    store.append([PARSE_ERROR])  # a final failure replaces a transient one
    assert open_store().latest()[KEY]["error"].startswith("parse_error")
    store.append([SCORE])  # and a rating replaces a final failure (a later, better answer)
    store.append([TIMEOUT])
    assert open_store().latest()[KEY]["score"] == 2.0
