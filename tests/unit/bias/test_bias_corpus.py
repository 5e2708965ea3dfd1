"""Corpus and ratings-table validation, and publisher-name normalisation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from assay.bias.corpus import (
    load_corpus,
    load_ratings,
    normalise_publishers,
    publisher_key,
    validate_corpus,
)
from assay.errors import DataValidationError


def _corpus(**overrides: list) -> pd.DataFrame:
    data = {
        "passage_id": ["p1", "p2", "p3"],
        "text": ["one", "two", "three"],
        "publisher": ["Fox News", "fox news ", "MSNBC"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_publisher_key_ignores_case_whitespace_and_punctuation() -> None:
    assert publisher_key("  Fox-News.") == publisher_key("fox   news") == "fox news"
    assert publisher_key("O’Reilly Media") == publisher_key("oreilly media".replace("o", "o ", 1))


def test_normalisation_picks_the_most_frequent_spelling_and_reports_the_mapping() -> None:
    names = pd.Series(["Breitbart", "breitbart", "Breitbart", "Fox News", "FOX  NEWS!", "MSNBC"])
    normalised, mapping = normalise_publishers(names)
    assert list(normalised) == ["Breitbart"] * 3 + ["Fox News"] * 2 + ["MSNBC"]
    assert mapping == {"breitbart": "Breitbart", "FOX  NEWS!": "Fox News"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"passage_id": ["p1", "p2", "p1"]}, "duplicate passage_id value(s) p1"),
        ({"text": ["one", "  ", "three"]}, "empty text in row(s) 2"),
        ({"text": ["one", None, "three"]}, "empty text in row(s) 2"),
        ({"publisher": ["A", None, "B"]}, "missing publisher in row(s) 2"),
        ({"publisher": ["A", "B", " "]}, "missing publisher in row(s) 3"),
    ],
)
def test_corpus_errors_name_the_problem(overrides: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_corpus(_corpus(**overrides))


def test_missing_publisher_column_is_an_error() -> None:
    with pytest.raises(DataValidationError, match="lacks the required column"):
        validate_corpus(_corpus().drop(columns="publisher"))


def test_corpus_reads_csv_jsonl_and_parquet_alike(tmp_path: Path) -> None:
    frame = _corpus(source=["b1", "b1", "b2"])
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "c.parquet")
    loaded = [load_corpus(tmp_path / f"c.{ext}") for ext in ("csv", "jsonl", "parquet")]
    for corpus in loaded:
        assert list(corpus.passages["publisher"]) == ["Fox News", "Fox News", "MSNBC"]
        assert list(corpus.passages["textbook"]) == ["b1", "b1", "b2"]  # "source" is an alias
        assert corpus.publisher_mapping == {"fox news ": "Fox News"}


def test_unsupported_extension_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(DataValidationError, match="unsupported extension"):
        load_corpus(tmp_path / "c.txt")


def test_ratings_table_requires_columns_and_one_publisher_per_passage(tmp_path: Path) -> None:
    ratings = pd.DataFrame(
        {"passage_id": ["a", "a"], "publisher": ["X", "Y"], "rater": ["r1", "r2"], "score": [0, 1]}
    )
    ratings.to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(DataValidationError, match="more than one publisher"):
        load_ratings(tmp_path / "r.csv")
    ratings.drop(columns="rater").to_csv(tmp_path / "r2.csv", index=False)
    with pytest.raises(DataValidationError, match="rater"):
        load_ratings(tmp_path / "r2.csv")


def test_cli_exits_2_with_one_sentence_on_a_bad_corpus(tmp_path: Path) -> None:
    from assay.cli import app

    _corpus(passage_id=["p1", "p1", "p2"]).to_csv(tmp_path / "bad.csv", index=False)
    result = CliRunner().invoke(
        app, ["bias-study", "--corpus", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert "duplicate passage_id" in result.output
    assert "Traceback" not in result.output
