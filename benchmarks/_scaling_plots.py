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
    rate.set(xscale="log", xlabel="passages (x3 raters)", ylabel="calls per second", ylim=(0, None))
    lines = [
        ("fanout_peak_mb", "driver while rating"),
        ("driver_peak_mb", "driver, with the check reading the store back"),
        ("children_peak_mb", "Ray processes"),
    ]
    for field, label in lines:
        if all(field in p for p in points):
            memory.plot([p["n"] for p in points], [p[field] for p in points], "o-", label=label)
    memory.set(xscale="log", xlabel="passages", ylabel="peak RSS (MiB)")
    memory.legend()
    return _save(fig, path)


def _panel(ax, results: list[dict], series: tuple, y: str, ylabel: str, *, logy: bool = True):
    """One panel: a line per value of ``series``'s key, log-log (or log-x), with its legend."""
    key, x, label, xlabel = series
    _lines(ax, results, key, x, y, label)
    ax.set(xscale="log", yscale="log" if logy else "linear", xlabel=xlabel, ylabel=ylabel)
    ax.legend()


def _store(results: list[dict], path: Path) -> Path:
    fig, (append, resume) = _figure("Ratings store", 2)
    by_backend = ("backend", "n", str, "rows")
    _panel(append, results, by_backend, "append_s_per_10k", "append seconds per 10^4 rows")
    _panel(resume, results, by_backend, "resume_s", "resume scan (s)")
    return _save(fig, path)


def _bayes(results: list[dict], path: Path) -> Path:
    fig, (wall, memory) = _figure("Bayesian publisher model (2 chains)", 2)
    by_scale = ("scale", "ratings", str, "ratings")
    _panel(wall, results, by_scale, "seconds", "fit wall time (s)")
    _panel(memory, results, by_scale, "driver_peak_mb", "peak RSS of the fit (MiB)", logy=False)
    return _save(fig, path)


def _serve(results: list[dict], path: Path) -> Path:
    fig, (throughput, p99) = _figure("Classifier serving (v2 REST, one server process)", 2)
    by_batch = ("batch_rows", "n", lambda b: f"{b}-row requests", "concurrency")
    _panel(throughput, results, by_batch, "rows_per_s", "rows per second")
    _panel(p99, results, by_batch, "p99_ms", "p99 latency (ms)")
    return _save(fig, path)


def _train(results: list[dict], path: Path) -> Path:
    fig, (wall,) = _figure("Training (fixed protocol) vs rows", 1)
    by_workers = ("workers", "rows", lambda w: f"{w} Ray worker(s)", "rows")
    _panel(wall, results, by_workers, "seconds", "training wall time (s)")
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
