"""The measuring logic of benchmarks/bayes_bench.py on made-up draws: time to a target ESS from
per-draw timestamps (slowest publisher, every chain, shortest prefix, no extrapolation) and the
issue's PASS/FAIL check. No sampling, no timing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from _bayes_timing import (
    PREFIX_STEP,
    min_bulk_ess,
    target_check,
    time_to_target,
)

CHAINS, DRAWS = 4, 400


def _draws(correlated_publisher: int | None = None, seed: int = 3) -> np.ndarray:
    """chain x draw x 3 publishers of iid N(0, 1) draws; one publisher AR(1) with rho 0.9."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(size=(CHAINS, DRAWS, 3))
    if correlated_publisher is not None:
        shocks = draws[:, :, correlated_publisher]
        ar = np.empty_like(shocks)
        ar[:, 0] = shocks[:, 0]
        for t in range(1, DRAWS):
            ar[:, t] = 0.9 * ar[:, t - 1] + np.sqrt(1 - 0.81) * shocks[:, t]
        draws[:, :, correlated_publisher] = ar
    return draws


def _stamps() -> np.ndarray:
    """Chain c's draw i arrives at (c + 1) * (i + 1) seconds: the last chain is the slowest."""
    return np.outer(np.arange(1, CHAINS + 1), np.arange(1, DRAWS + 1)).astype(float)


def test_time_is_when_the_shortest_reaching_prefix_is_complete_in_every_chain() -> None:
    draws, target = _draws(), 600.0
    result = time_to_target(draws, _stamps(), target)
    assert result.reached
    assert result.ess >= target
    assert min_bulk_ess(draws[:, : result.prefix - PREFIX_STEP]) < target  # shortest on the grid
    assert result.prefix < DRAWS
    assert result.seconds == CHAINS * result.prefix  # the slowest chain's stamp, not chain 0's


def test_the_slowest_publisher_decides() -> None:
    iid, correlated = _draws(), _draws(correlated_publisher=1)
    assert min_bulk_ess(correlated) == pytest.approx(
        min(min_bulk_ess(correlated[:, :, [j]]) for j in range(3))
    )
    assert min_bulk_ess(correlated) < 0.3 * min_bulk_ess(iid)
    target = 150.0
    assert time_to_target(correlated, _stamps(), target).prefix > (
        time_to_target(iid, _stamps(), target).prefix
    )


def test_an_unreached_target_reports_the_whole_run_without_extrapolating() -> None:
    draws = _draws(correlated_publisher=0)
    result = time_to_target(draws, _stamps(), target=10_000.0)
    assert not result.reached
    assert result.prefix == DRAWS
    assert result.seconds == _stamps().max()
    assert result.ess == pytest.approx(min_bulk_ess(draws))
    assert result.describe().startswith(f"not reached in {CHAINS * DRAWS:.1f} s (ESS ")


def test_stamps_must_match_the_draws() -> None:
    with pytest.raises(ValueError, match="do not match"):
        time_to_target(_draws(), _stamps()[:, :-1], target=100.0)


def test_target_check_passes_at_the_thresholds_and_fails_each_criterion_alone() -> None:
    assert all(c.passed for c in target_check(3000.0, 1.01, 0, 30.0))
    failing = {
        "ESS": target_check(2999.0, 1.0, 0, 10.0),
        "R-hat": target_check(5000.0, 1.0101, 0, 10.0),
        "divergences": target_check(5000.0, 1.0, 1, 10.0),
        "seconds": target_check(5000.0, 1.0, 0, 30.1),
    }
    for index, (label, criteria) in enumerate(failing.items()):
        assert [c.passed for c in criteria] == [i != index for i in range(4)], label
