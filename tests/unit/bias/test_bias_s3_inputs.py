"""The bias study's readers take s3:// as well as local paths: the corpus / ratings table, the
BABE folder and the ensemble file, read through the real ``minio`` client from moto's
standalone S3 server on 127.0.0.1 (MinIO's stand-in; fixtures in tests/conftest.py). A bad or
missing s3:// location is one sentence naming the URI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from assay.bias.babe import FINAL_FILE, RAW_FILE, load_babe
from assay.bias.corpus import load_corpus, read_table
from assay.errors import ConfigError
from assay.llm.ensemble import bundled_ensemble_path, load_ensemble
from assay.storage.s3 import ObjectStore, S3Location, StorageError

pytestmark = pytest.mark.s3

CORPUS = pd.DataFrame(
    {
        "passage_id": ["p1", "p2", "p3"],
        "text": ["One passage.", "Another passage.", "A third one."],
        "publisher": ["Aldine Press", "aldine press", "Beacon Learning"],
    }
)


@pytest.fixture
def bucket(minio_env: str) -> str:
    name = f"bias-{uuid.uuid4().hex[:8]}"
    ObjectStore().client.make_bucket(name)
    return name


def put(bucket: str, key: str, data: bytes) -> str:
    ObjectStore().put_bytes(S3Location(bucket, key), data, "application/octet-stream")
    return f"s3://{bucket}/{key}"


def test_a_corpus_on_s3_reads_like_the_same_file_on_disk(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "corpus.csv"
    CORPUS.to_csv(local, index=False)
    uri = put(bucket, "inputs/corpus.csv", local.read_bytes())
    pd.testing.assert_frame_equal(read_table(uri), read_table(local))
    corpus = load_corpus(uri)
    assert corpus.source == uri
    assert corpus.publisher_mapping == {"aldine press": "Aldine Press"}


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("s3://{bucket}/inputs/absent.csv", "s3://{bucket}/inputs/absent.csv does not exist"),
        ("s3://no-such-bucket-k3/corpus.csv", "bucket 'no-such-bucket-k3' does not exist"),
        ("s3:///corpus.csv", "names no bucket"),
    ],
)
def test_a_missing_s3_corpus_is_one_sentence_naming_it(bucket: str, uri: str, named: str) -> None:
    with pytest.raises(StorageError, match=named.format(bucket=bucket)) as caught:
        read_table(uri.format(bucket=bucket))
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_a_babe_folder_on_s3_imports_like_the_local_folder(bucket: str, tmp_path: Path) -> None:
    folder = tmp_path / "babe"
    folder.mkdir()
    raw = pd.DataFrame(
        {
            "text": ["Sentence A.", "Sentence A.", "Sentence B.", "Sentence B."],
            "outlet": ["Fox News", "Fox News", "usa-today", "usa-today"],
            "annotator_id": [1, 2, 1, 2],
            "Label_bias_0-1": [1, 1, 0, 1],
        }
    )
    final = pd.DataFrame(
        {
            "text": ["Sentence A.", "Sentence B."],
            "outlet": ["Fox News", "usa-today"],
            "label_bias": ["Biased", "No agreement"],
            "type": ["right", "center"],
        }
    )
    raw.to_csv(folder / RAW_FILE, sep=";", index=False)
    final.to_csv(folder / FINAL_FILE, sep=";", index=False)
    for name in (RAW_FILE, FINAL_FILE):
        put(bucket, f"data/babe/{name}", (folder / name).read_bytes())

    remote, local = load_babe(f"s3://{bucket}/data/babe"), load_babe(folder)
    pd.testing.assert_frame_equal(remote.ratings, local.ratings)
    pd.testing.assert_frame_equal(remote.passages, local.passages)
    assert remote.notes["source"] == f"s3://{bucket}/data/babe"
    with pytest.raises(StorageError, match=f"s3://{bucket}/data/nothing-here does not exist"):
        load_babe(f"s3://{bucket}/data/nothing-here")


def test_an_ensemble_file_on_s3_loads_with_its_env_references_expanded(bucket: str) -> None:
    uri = put(bucket, "ensembles/sim.yaml", bundled_ensemble_path("sim").read_bytes())
    ensemble = load_ensemble(uri, environ={"ASSAY_SIM_URL": "http://sim.example:8000"})
    assert ensemble.name == "sim"
    urls = {r.endpoints[0].base_url for r in ensemble.raters.values()}
    assert urls == {"http://sim.example:8000", "http://sim.example:8000/v1"}
    broken = put(bucket, "ensembles/broken.yaml", b"raters: {x: {provider: nope, model: m}}\n")
    with pytest.raises(ConfigError, match=f"ensemble file {broken}: raters.x.provider"):
        load_ensemble(broken)
    with pytest.raises(StorageError, match=f"s3://{bucket}/ensembles/absent.yaml does not"):
        load_ensemble(f"s3://{bucket}/ensembles/absent.yaml")


def test_bundled_ensembles_are_named_and_unknown_names_refused() -> None:
    assert load_ensemble("bundled:providers").raters["anthropic"].endpoints[0].api_key_env == (
        "ANTHROPIC_API_KEY"
    )
    with pytest.raises(ConfigError, match="no bundled ensemble 'nope'"):
        load_ensemble("bundled:nope")
    with pytest.raises(ConfigError, match="must be letters"):
        load_ensemble("bundled:../sim")
