"""The ratings store on s3:// (moto's standalone S3 server on 127.0.0.1, the real ``minio``
client): one immutable segment object per append, read back as the union deduplicated by key,
so a new process resumes from what earlier ones wrote and concurrent writers lose nothing."""

from __future__ import annotations

import threading
import uuid

import pytest
from _store_rows import row

from assay.bias.ratings import RATINGS_COLUMNS
from assay.bias.store import S3RatingsStore, open_ratings_store
from assay.storage.s3 import ObjectStore, S3Location, StorageError

pytestmark = pytest.mark.s3


@pytest.fixture
def store_uri(minio_env: str) -> str:
    bucket = f"store-{uuid.uuid4().hex[:8]}"
    ObjectStore().client.make_bucket(bucket)
    return f"s3://{bucket}/studies/demo/ratings-store"


def segments(uri: str) -> list[str]:
    root = S3RatingsStore(uri)
    return ObjectStore().list_keys(S3Location(root.root.bucket, root.segments.key + "/"))


def test_each_append_is_one_segment_and_a_new_process_resumes_from_them(store_uri: str) -> None:
    first = open_ratings_store(store_uri)
    first.append([row("p1"), row("p2", error="timeout: slow")])
    first.append([row("p3", error="parse_error: not JSON")])
    assert len(segments(store_uri)) == 2

    resumed = open_ratings_store(store_uri)  # a re-submitted run: a new store object
    assert resumed.finished_keys() == {"p1|a", "p3|a"}  # the timeout is retried
    resumed.append([row("p2", score=-1.0)])
    again = open_ratings_store(store_uri)
    assert again.finished_keys() == {"p1|a", "p2|a", "p3|a"}
    frame = again.to_frame()
    assert list(frame.columns) == list(RATINGS_COLUMNS)
    assert len(frame) == 3 and len(again.rows()) == 4
    assert frame.set_index("passage_id").loc["p2", "score"] == -1.0


def test_a_finished_rating_is_never_superseded_by_a_later_failure(store_uri: str) -> None:
    writer_a, writer_b = S3RatingsStore(store_uri), S3RatingsStore(store_uri)
    writer_a.append([row("p1", score=2.0)])
    writer_b.append([row("p1", error="timeout: slow")])  # a slower concurrent run's failure
    latest = S3RatingsStore(store_uri).latest()
    assert latest["p1|a"]["score"] == 2.0 and not latest["p1|a"]["error"]


def test_concurrent_writers_lose_no_row(store_uri: str) -> None:
    def write(rater: str) -> None:
        store = S3RatingsStore(store_uri)
        for start in range(0, 20, 5):
            store.append([row(f"p{i}", rater=rater) for i in range(start, start + 5)])

    threads = [threading.Thread(target=write, args=(r,)) for r in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = S3RatingsStore(store_uri)
    assert len(segments(store_uri)) == 12
    assert reader.finished_keys() == {f"p{i}|{r}" for i in range(20) for r in "abc"}
    assert len(reader.rows()) == 60


def test_a_store_in_a_missing_bucket_fails_before_any_rating(minio_env: str) -> None:
    with pytest.raises(StorageError, match="ratings store s3://absent-k3/x: bucket 'absent-k3'"):
        open_ratings_store("s3://absent-k3/x")
    with pytest.raises(StorageError, match="names no bucket"):
        open_ratings_store("s3://")
