"""Import BABE (Bias Annotations By Experts, Spinde et al. 2021) expert labels as ratings.

BABE is AGPL-3.0 data: it is read from its folder at run time and never copied into this
repository. Expected files (see the folder's NOTICE.md):

- ``raw_labels_SG2.csv``: one row per (sentence, expert), ';'-separated; the expert's label is
  ``Label_bias_0-1`` (1 = biased), the expert is ``annotator_id``, the publisher ``outlet``.
- ``final_labels_SG2.csv``: the experts' majority label per sentence (``label_bias``: Biased /
  Non-biased / No agreement) and the outlet's leaning (``type``).

A unit (passage) is one exact sentence text, so every (sentence, expert) pair appears once. A few
sentences occur in the raw file in slightly different spellings (whitespace, truncation); they
stay separate units with fewer raters and no majority label. The outlet of a sentence is the
final file's outlet; for sentences only in the raw file, the most frequent raw outlet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assay.bias.corpus import normalise_publishers, validate_ratings
from assay.errors import DataValidationError
from assay.storage.s3 import local_copy

RAW_FILE = "raw_labels_SG2.csv"
FINAL_FILE = "final_labels_SG2.csv"
PROMPT_VERSION = "babe-SG2-expert"
_RAW_COLUMNS = ("text", "outlet", "annotator_id", "Label_bias_0-1")
_MAJORITY = {"Biased": 1, "Non-biased": 0}


@dataclass
class BabeStudy:
    """BABE as a ratings table plus per-passage facts, and what the import did."""

    ratings: pd.DataFrame
    passages: pd.DataFrame
    publisher_mapping: dict[str, str] = field(default_factory=dict)
    notes: dict[str, int | str] = field(default_factory=dict)


def passage_id_for(text: str) -> str:
    """A stable id for a sentence: 'babe-' + the first 12 hex digits of its SHA-1."""
    return "babe-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def check_babe_folder(folder: str | Path, shown: str | None = None) -> None:
    """DataValidationError unless ``folder`` holds BABE's raw and final label files."""
    for name in (RAW_FILE, FINAL_FILE):
        if not (Path(folder) / name).is_file():
            raise DataValidationError(
                f"{shown or folder}/{name} is missing; point --babe at the BABE folder holding "
                f"{RAW_FILE} and {FINAL_FILE}."
            )


def _read(folder: Path, name: str, shown: str) -> pd.DataFrame:
    if not (folder / name).exists():
        check_babe_folder(folder, shown)
    return pd.read_csv(folder / name, sep=";", encoding="utf-8-sig")


def load_babe(folder: str | Path) -> BabeStudy:
    """Read BABE's SG2 raw and final labels into the long ratings table (binary scale).

    ``folder`` is a local folder or an ``s3://bucket/prefix`` holding the two files."""
    shown = str(folder).rstrip("/")
    with local_copy(folder) as local:
        raw = _read(local, RAW_FILE, shown)
        final = _read(local, FINAL_FILE, shown)
    missing = [c for c in _RAW_COLUMNS if c not in raw]
    if missing:
        raise DataValidationError(f"{shown}/{RAW_FILE} lacks column(s) {', '.join(missing)}.")
    raw = raw.dropna(subset=["text"])
    final = final.dropna(subset=["text"]).drop_duplicates("text")

    raw_outlet, raw_mapping = normalise_publishers(raw["outlet"].fillna("unknown"))
    final_outlet, final_mapping = normalise_publishers(final["outlet"].fillna("unknown"))
    outlet_of = dict(zip(final["text"], final_outlet, strict=True))
    mode_outlet = (
        pd.DataFrame({"text": raw["text"], "outlet": raw_outlet})
        .groupby("text")["outlet"]
        .agg(lambda s: s.value_counts().index[0])
    )
    publisher = raw["text"].map(lambda t: outlet_of.get(t, mode_outlet[t]))
    # One canonical spelling across both files ("breitbart" and "Breitbart" are one outlet).
    publisher, mapping = normalise_publishers(publisher)
    mapping = {**raw_mapping, **final_mapping, **mapping}

    label = pd.to_numeric(raw["Label_bias_0-1"], errors="coerce")
    ratings = pd.DataFrame(
        {
            "passage_id": raw["text"].map(passage_id_for),
            "publisher": publisher,
            "textbook": pd.NA,
            "rater": "expert-" + raw["annotator_id"].astype(str),
            "score": np.nan,
            "biased": label.round().astype("Int64"),
            "confidence": np.nan,
            "explanation": "",
            "prompt_version": PROMPT_VERSION,
            "model": "human-expert",
            "tokens": 0,
            "cost": 0.0,
            "latency": 0.0,
            "error": np.where(label.isna(), "no 0/1 label in source", ""),
        }
    )
    ratings, more_mapping = validate_ratings(ratings, source=f"{shown}/{RAW_FILE}")
    mapping.update(more_mapping)

    passages = _passages(raw, final, ratings)
    notes: dict[str, int | str] = {
        "source": shown,
        "raw_rows": len(raw),
        "units": int(passages.shape[0]),
        "units_with_majority_label": int(passages["expert_label"].notna().sum()),
        "units_only_in_raw_file": int((~raw["text"].drop_duplicates().isin(outlet_of)).sum()),
        "ratings_without_label": int(label.isna().sum()),
        "experts": int(ratings["rater"].nunique()),
        "license": "AGPL-3.0 (BABE data; read at run time, not redistributed)",
    }
    return BabeStudy(ratings=ratings, passages=passages, publisher_mapping=mapping, notes=notes)


def _passages(raw: pd.DataFrame, final: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    texts = raw["text"].drop_duplicates()
    frame = pd.DataFrame({"passage_id": texts.map(passage_id_for).to_numpy(), "text": texts})
    publisher = ratings.drop_duplicates("passage_id").set_index("passage_id")["publisher"]
    frame["publisher"] = frame["passage_id"].map(publisher)
    majority = final.set_index("text")["label_bias"].map(_MAJORITY)
    frame["expert_label"] = frame["text"].map(majority).astype("Int64")
    if "type" in final:
        leaning = final.assign(publisher=normalise_publishers(final["outlet"].fillna(""))[0])
        leaning = (
            leaning.dropna(subset=["type"])
            .groupby("publisher")["type"]
            .agg(lambda s: s.value_counts().index[0])
        )
        frame["publisher_leaning"] = frame["publisher"].map(leaning)
    if "topic" in raw:
        frame["topic"] = frame["text"].map(raw.drop_duplicates("text").set_index("text")["topic"])
    return frame.reset_index(drop=True)
