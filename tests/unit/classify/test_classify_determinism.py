"""Same seed, same numbers: out-of-fold predictions do not depend on the worker count (real
local Ray with 1 and 2 tasks in flight) nor on running inline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from assay.classify.cv import NestedCV
from assay.classify.executor import InlineExecutor, RayExecutor
from assay.data.wdbc import load_dataset


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    import ray

    from assay.parallel import init_ray

    started_here = not ray.is_initialized()
    init_ray(workers=2)
    yield ray
    if started_here:
        ray.shutdown()


def _oof(executor: Any, config: Any) -> dict[tuple[str, str], np.ndarray]:
    ds = load_dataset()
    runner = NestedCV(ds.X.to_numpy(), ds.y.to_numpy(), config, executor, progress=False)
    return {(r.model, r.fold_id): r.p_test for r in runner.run()}


def test_same_seed_same_oof_whatever_the_worker_count(ray_session: Any, tiny_config: Any) -> None:
    config = tiny_config(single_split=False)
    one = _oof(RayExecutor(workers=1), config)
    two_executor = RayExecutor(workers=2)
    assert two_executor.workers == 2
    two = _oof(two_executor, config)
    inline = _oof(InlineExecutor(), config)
    assert one.keys() == two.keys() == inline.keys()
    assert len(one) == 2 * 3
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=str(key))
        np.testing.assert_array_equal(one[key], inline[key], err_msg=str(key))


def test_another_seed_changes_the_numbers(tiny_config: Any) -> None:
    cheap = {"models": ["logistic_regression"], "single_split": False}
    first = _oof(InlineExecutor(), tiny_config(**cheap))
    other = _oof(InlineExecutor(), tiny_config(**cheap, seed=8))
    assert not all(np.array_equal(first[k], other.get(k, np.empty(0))) for k in first)
