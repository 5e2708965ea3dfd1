"""The figures of ``scaling.py``: one PNG per curve, log-log where the x axis is data size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _lines(ax, results: list[dict], key: str, x: str, y: str, label: Callable[[object], str]):
    for value in sorted({r.get(key) for r in results}, key=str):
        points = sorted((r for r in results if r.get(key) == value), key=lambda r: r[x])
        ax.plot([p[x] for p in points], [p[y] for p in points], "o-", label=label(value))


def _figure(title: str, panels: int) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.8), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fanout(results: list[dict], path: Path) -> Path:
    fig, (rate, memory) = _figure("LLM fan-out (Ray, simulated endpoint, no server limit)", 2)
    points = sorted(results, key=lambda r: r["n"])
    rate.plot([p["n"] for p in points], [p["calls_per_s"] for p in points], "o-")
    rate.set(xscale="log", xlabel="passages (x3 raters)", ylabel="calls per second")
    for field, label in (("driver_peak_mb", "driver"), ("children_peak_mb", "Ray processes")):
        memory.plot([p["n"] for p in points], [p[field] for p in points], "o-", label=label)
    memory.set(xscale="log", xlabel="passages", ylabel="peak RSS (MiB)")
    memory.legend()
    return _save(fig, path)


def _store(results: list[dict], path: Path) -> Path:
    fig, (append, resume) = _figure("Ratings store", 2)
    _lines(append, results, "backend", "n", "append_s_per_10k", str)
    append.set(xscale="log", yscale="log", xlabel="rows", ylabel="append seconds per 10^4 rows")
    _lines(resume, results, "backend", "n", "resume_s", str)
    resume.set(xscale="log", yscale="log", xlabel="rows", ylabel="resume scan (s)")
    append.legend()
    resume.legend()
    return _save(fig, path)


def _bayes(results: list[dict], path: Path) -> Path:
    fig, (wall, memory) = _figure("Bayesian publisher model (2 chains)", 2)
    _lines(wall, results, "scale", "ratings", "seconds", str)
    wall.set(xscale="log", yscale="log", xlabel="ratings", ylabel="fit wall time (s)")
    _lines(memory, results, "scale", "ratings", "driver_peak_mb", str)
    memory.set(xscale="log", xlabel="ratings", ylabel="peak RSS of the fit (MiB)")
    wall.legend()
    memory.legend()
    return _save(fig, path)


def _serve(results: list[dict], path: Path) -> Path:
    fig, (throughput, p99) = _figure("Classifier serving (v2 REST, one server process)", 2)
    rows = lambda b: f"{b}-row requests"  # noqa: E731
    _lines(throughput, results, "batch_rows", "n", "rows_per_s", rows)
    throughput.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="rows per second")
    _lines(p99, results, "batch_rows", "n", "p99_ms", rows)
    p99.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="p99 latency (ms)")
    throughput.legend()
    p99.legend()
    return _save(fig, path)


def _train(results: list[dict], path: Path) -> Path:
    fig, (wall,) = _figure("Training (fixed protocol) vs rows", 1)
    _lines(wall, results, "workers", "rows", "seconds", lambda w: f"{w} Ray worker(s)")
    wall.set(xscale="log", yscale="log", xlabel="rows", ylabel="training wall time (s)")
    wall.legend()
    return _save(fig, path)


PLOTS = {"fanout": _fanout, "store": _store, "bayes": _bayes, "serve": _serve, "train": _train}


def plot_all(results: list[dict], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for curve, draw in PLOTS.items():
        points = [r for r in results if r["curve"] == curve]
        if points:
            written.append(draw(points, folder / f"scaling-{curve}.png"))
    return written
