"""Predictive replications are generated a chunk of draws at a time to bound their memory: the
chunk size changes neither the replications a seed gives nor the statistics checked on them."""

from __future__ import annotations

import numpy as np
import pytest
from _designs import random_design

from assay.bias import collapsed, ppc
from assay.bias.design import ModelData
from assay.bias.predictive import replicate

DRAWS = 7


def _params(data: ModelData, rng: np.random.Generator) -> dict[str, np.ndarray]:
    raters, publishers = len(data.raters), len(data.publishers)
    params = {
        "publisher_effect": rng.normal(0, 1, (DRAWS, publishers)),
        "passage_sd": rng.uniform(0.3, 1.0, DRAWS),
        "rater_offset": rng.normal(0, 0.3, (DRAWS, raters)),
        "rater_scale": rng.uniform(0.3, 1.5, (DRAWS, raters)),
    }
    if data.levels is not None:
        params["cutpoints"] = np.sort(rng.normal(0, 1.5, (DRAWS, len(data.levels) - 1)), axis=1)
    return params


@pytest.mark.parametrize(
    ("scale", "conditional"),
    [
        ("interval", False),
        ("binary", False),
        ("binary", True),
        ("ordinal", False),
        ("ordinal", True),
    ],
)
def test_the_chunk_size_does_not_change_the_replications(scale: str, conditional: bool) -> None:
    """Prior-style (new passages) and, on the logit scales, conditional (quadrature) draws."""
    data = random_design(np.random.default_rng(1), scale, textbooks=False, missing=0.2)
    params = _params(data, np.random.default_rng(2))
    observations = len(data.obs_passage)
    whole = replicate(params, data, np.random.default_rng(3), conditional=conditional)
    for rows_per_chunk in (1, 3):
        chunked = replicate(
            params,
            data,
            np.random.default_rng(3),
            conditional=conditional,
            chunk=rows_per_chunk,
        )
        np.testing.assert_array_equal(chunked, whole)
    assert whole.shape == (DRAWS, observations)
    if scale == "interval":
        assert whole.dtype == np.float32 and np.isfinite(whole).all()
    else:
        n_values = 2 if data.levels is None else len(data.levels)
        assert whole.dtype == np.int8
        assert set(np.unique(whole)) == set(range(n_values))  # every answer occurs


def test_the_interval_conditional_replications_do_not_depend_on_the_chunk() -> None:
    """The exact Normal conditional of the passage effects, on interval ratings."""
    data = random_design(np.random.default_rng(4), "ordinal", textbooks=False, missing=0.2)
    data = ModelData(**{**data.__dict__, "scale": "interval", "levels": None})
    params = _params(data, np.random.default_rng(5))
    whole = replicate(params, data, np.random.default_rng(6), conditional=True)
    chunked = replicate(params, data, np.random.default_rng(6), conditional=True, chunk=2)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("scale", ["binary", "ordinal"])
def test_statistics_of_chunks_equal_those_of_the_whole(
    scale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_design(np.random.default_rng(7), scale, textbooks=False, missing=0.2)
    replicated = replicate(
        _params(data, np.random.default_rng(8)), data, np.random.default_rng(9), conditional=False
    )
    whole = ppc.statistics(replicated, data)
    monkeypatch.setattr(collapsed, "DRAW_CHUNK_VALUES", 2 * len(data.y))
    chunked = ppc.statistics(replicated, data)
    assert chunked.keys() == whole.keys() and len(whole) > 5
    for name, values in whole.items():
        assert values.shape == (DRAWS,)
        # The sparse group sums add in a different order for a different number of rows.
        np.testing.assert_allclose(chunked[name], values, rtol=1e-12, atol=1e-15)


def test_chunks_shrink_only_for_large_studies() -> None:
    """Studies up to 7,812 passages keep the 256-draw chunks of the integrated effects (so a
    seed's draws are what they were); larger ones use fewer draws per chunk, at least one."""
    assert collapsed.draw_chunk(600) == collapsed.draw_chunk(7_812) == 256
    assert collapsed.draw_chunk(333_334) == 5
    assert collapsed.draw_chunk(10**8) == 1
