"""The adaptive batcher shared by the model servers (pure asyncio, no server)."""

from __future__ import annotations

import asyncio

import pytest

from assay.serving.batching import AdaptiveBatcher


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if self.fail:
            raise ValueError("model exploded")
        return [item * 10 for item in items]


@pytest.mark.asyncio
async def test_concurrent_submissions_share_one_call_and_get_their_own_results() -> None:
    run = Recorder()
    batcher = AdaptiveBatcher(run, max_batch_size=100)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert results == [i * 10 for i in range(8)]
    assert len(run.calls) < 8 and sum(len(c) for c in run.calls) == 8
    batcher.stop()


@pytest.mark.asyncio
async def test_a_lone_request_does_not_wait() -> None:
    run = Recorder()
    batcher = AdaptiveBatcher(run, max_batch_size=100, max_wait_s=0.0)
    assert await asyncio.wait_for(batcher.submit(3), timeout=1.0) == 30
    assert run.calls == [[3]]
    batcher.stop()


@pytest.mark.asyncio
async def test_the_size_cap_splits_batches() -> None:
    run = Recorder()
    batcher = AdaptiveBatcher(run, max_batch_size=10)
    results = await asyncio.gather(*(batcher.submit(i, size=4) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert all(len(call) * 4 <= 10 for call in run.calls)
    assert sorted(i for call in run.calls for i in call) == [0, 1, 2, 3, 4]
    batcher.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("in_thread", [False, True])
async def test_a_failing_call_fails_every_request_of_its_batch_and_the_batcher_goes_on(
    in_thread: bool,
) -> None:
    run = Recorder(fail=True)
    batcher = AdaptiveBatcher(run, max_batch_size=100, in_thread=in_thread)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ValueError) and "exploded" in str(o) for o in outcomes)
    run.fail = False
    assert await batcher.submit(7) == 70
    batcher.stop()
