"""The bias study's data as the Bayesian model sees it: integer-coded ratings and coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.bias.aggregate import Scale, has_textbooks, ordinal_levels, valid_ratings

NO_TEXTBOOK = "(no textbook)"


@dataclass
class ModelData:
    """Integer-coded ratings and the coordinates of every dimension."""

    scale: Scale
    publishers: list[str]
    raters: list[str]
    passages: list[str]
    textbooks: list[str] | None
    passage_publisher: np.ndarray
    passage_textbook: np.ndarray | None
    obs_passage: np.ndarray
    obs_rater: np.ndarray
    y: np.ndarray
    levels: np.ndarray | None = None

    @property
    def coords(self) -> dict[str, list[str]]:
        coords = {
            "publisher": self.publishers,
            "rater": self.raters,
            "passage": self.passages,
            "obs": [str(i) for i in range(len(self.y))],
        }
        if self.textbooks is not None:
            coords["textbook"] = self.textbooks
        if self.levels is not None:
            coords["cutpoint"] = [
                f"{a:g}|{b:g}" for a, b in zip(self.levels[:-1], self.levels[1:], strict=True)
            ]
        return coords


def prepare(ratings: pd.DataFrame, scale: Scale) -> ModelData:
    """Code the valid ratings as integer indices (textbooks nested within publishers)."""
    valid = valid_ratings(ratings, scale)
    passages = valid.drop_duplicates("passage_id").set_index("passage_id")
    passage_ids = sorted(passages.index)
    publishers = sorted(passages["publisher"].unique())
    raters = sorted(valid["rater"].unique())
    passage_index = {p: i for i, p in enumerate(passage_ids)}
    pub_index = {p: i for i, p in enumerate(publishers)}
    passage_publisher = passages.loc[passage_ids, "publisher"].map(pub_index).to_numpy()
    textbooks = passage_textbook = None
    if has_textbooks(valid):
        nested = (
            passages.loc[passage_ids, "publisher"].astype(str)
            + " / "
            + passages.loc[passage_ids, "textbook"].fillna(NO_TEXTBOOK).astype(str)
        )
        textbooks = sorted(nested.unique())
        tb_index = {t: i for i, t in enumerate(textbooks)}
        passage_textbook = nested.map(tb_index).to_numpy()
    y = valid["value"].to_numpy(float)
    levels = None
    if scale == "ordinal":
        levels = ordinal_levels(valid)
        y = np.searchsorted(levels, y).astype(float)
    return ModelData(
        scale=scale,
        publishers=[str(p) for p in publishers],
        raters=[str(r) for r in raters],
        passages=[str(p) for p in passage_ids],
        textbooks=textbooks,
        passage_publisher=passage_publisher.astype(int),
        passage_textbook=None if passage_textbook is None else passage_textbook.astype(int),
        obs_passage=valid["passage_id"].map(passage_index).to_numpy().astype(int),
        obs_rater=valid["rater"].map({r: i for i, r in enumerate(raters)}).to_numpy().astype(int),
        y=y if scale != "binary" else y.astype(int),
        levels=levels,
    )


def dense(data: ModelData) -> tuple[np.ndarray, np.ndarray]:
    """Passages x raters ratings (0 where missing) and the 0/1 mask of present ratings."""
    shape = (len(data.passages), len(data.raters))
    values, mask = np.zeros(shape), np.zeros(shape)
    values[data.obs_passage, data.obs_rater] = data.y
    mask[data.obs_passage, data.obs_rater] = 1.0
    return values, mask
