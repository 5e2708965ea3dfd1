"""The measuring logic of benchmarks/scaling.py: the log-log slope, one real store point run in its
own process (its result and its sampled memory), the per-curve summary and the plots. No timing
is asserted: the figures themselves belong to the benchmark's output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from scaling import run_point, slope, summarise


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 2.0])
def test_slope_recovers_the_exponent_of_a_power_law(exponent: float) -> None:
    sizes = [1e3, 1e4, 1e5, 1e6]
    assert slope(sizes, [3.0 * s**exponent for s in sizes]) == pytest.approx(exponent, abs=1e-9)


def test_slope_needs_two_positive_points() -> None:
    assert slope([1e3], [2.0]) != slope([1e3], [2.0])  # nan
    assert slope([1e3, 1e4], [0.0, 0.0]) != slope([1e3, 1e4], [0.0, 0.0])


def test_a_store_point_writes_and_resumes_every_row_in_its_own_process(tmp_path: Path) -> None:
    result = run_point("store", 250, "--location", str(tmp_path / "store"))
    assert result["curve"] == "store" and result["n"] == 250
    assert result["append_s"] > 0 and result["resume_s"] > 0
    assert result["driver_peak_mb"] > 10  # the sampler saw the child's Python process
    lines = (tmp_path / "store" / "ratings.jsonl").read_text().splitlines()
    assert len(lines) == 250


def test_a_failing_point_raises_with_its_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)store n=-1 failed.*resume found 0 finished keys"):
        run_point("store", -1, "--location", str(tmp_path / "store"))


def test_summary_names_each_curve_with_its_slope_and_plots_are_written(tmp_path: Path) -> None:
    from _scaling_plots import plot_all

    results = [
        {"curve": "store", "backend": "local", "n": n, "append_s": n / 1e4, "resume_s": n / 1e5,
         "append_s_per_10k": 1.0, "driver_peak_mb": 100.0}
        for n in (1_000, 10_000, 100_000)
    ] + [
        {"curve": "serve", "batch_rows": 1, "n": c, "p99_ms": 2.0 * c, "rows_per_s": 500.0}
        for c in (1, 4, 16)
    ]  # fmt: skip
    lines = summarise(results)
    assert any("store append (local)" in line and "slope  1.00" in line for line in lines)
    assert any("serving 1-row p99" in line and "slope  1.00" in line for line in lines)
    written = plot_all(results, tmp_path)
    assert sorted(p.name for p in written) == ["scaling-serve.png", "scaling-store.png"]
    assert all(p.stat().st_size > 1000 for p in written)
