"""The measuring logic of ``bayes_bench.py``: time to a target ESS from per-draw timestamps, and
the issue's target check. Pure numpy/arviz, so the unit tests run it without sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PREFIX_STEP = 10
"""Draws per chain between the prefixes scanned for the target ESS."""


def min_bulk_ess(draws: np.ndarray) -> float:
    """The smallest bulk ESS over the last axis (chain x draw x publisher): the slowest
    publisher."""
    import arviz as az

    return float(min(az.ess(np.ascontiguousarray(draws[:, :, j])) for j in range(draws.shape[2])))


@dataclass(frozen=True)
class TimeToTarget:
    """When the slowest publisher's bulk ESS first reached the target: the prefix (draws per
    chain) and the seconds at which every chain had drawn it; or, not reached, the ESS of the
    whole run and how long it ran."""

    target: float
    reached: bool
    prefix: int
    seconds: float
    ess: float

    def describe(self) -> str:
        if self.reached:
            return (
                f"{self.seconds:.1f} s (bulk ESS {self.ess:.0f} after {self.prefix} draws "
                "per chain)"
            )
        return f"not reached in {self.seconds:.1f} s (ESS {self.ess:.0f} at the end)"


def prefix_reaching(draws: np.ndarray, target: float, step: int = PREFIX_STEP) -> int | None:
    """The shortest prefix (same length in every chain, a multiple of ``step`` or the whole
    run) whose slowest-publisher bulk ESS is at least ``target``; None if none is."""
    total = draws.shape[1]
    lengths = [*range(step, total, step), total]
    for length in lengths:
        if length >= 4 and min_bulk_ess(draws[:, :length]) >= target:
            return length
    return None


def time_to_target(
    draws: np.ndarray, stamps: np.ndarray, target: float, step: int = PREFIX_STEP
) -> TimeToTarget:
    """Measured time to ``target`` bulk ESS: ``stamps`` (chain x draw) holds the seconds since
    the start at which each post-warm-up draw arrived; a prefix is complete when its last draw
    has arrived in every chain. Never extrapolates: an unreached target reports the last
    stamp and the ESS of the whole run."""
    if stamps.shape != draws.shape[:2]:
        raise ValueError(f"stamps {stamps.shape} do not match draws {draws.shape[:2]}")
    length = prefix_reaching(draws, target, step)
    if length is None:
        return TimeToTarget(target, False, draws.shape[1], float(stamps.max()), min_bulk_ess(draws))
    seconds = float(stamps[:, length - 1].max())
    return TimeToTarget(target, True, length, seconds, min_bulk_ess(draws[:, :length]))


@dataclass(frozen=True)
class Criterion:
    name: str
    value: str
    passed: bool


def target_check(
    ess_min: float,
    rhat_max: float,
    divergences: int,
    total_s: float,
    *,
    ess_target: float = 3000.0,
    rhat_target: float = 1.01,
    seconds_target: float = 30.0,
) -> list[Criterion]:
    """The issue's target for assay's interval fit, one criterion per line."""
    return [
        Criterion(
            f"every publisher bulk ESS >= {ess_target:.0f}", f"{ess_min:.0f}", ess_min >= ess_target
        ),
        Criterion(f"R-hat <= {rhat_target}", f"{rhat_max:.4f}", rhat_max <= rhat_target),
        Criterion("0 divergences", str(divergences), divergences == 0),
        Criterion(
            f"<= {seconds_target:.0f} s including compilation",
            f"{total_s:.1f} s",
            total_s <= seconds_target,
        ),
    ]
