"""The report's figures (matplotlib, Agg backend), each written as a PNG and returned as bytes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

from assay.classify.evaluate import pooled_oof
from assay.classify.models import MODELS

if TYPE_CHECKING:
    import pandas as pd

DPI = 110


def _figure(width: float = 6.4, height: float = 4.8, ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), dpi=DPI)


def _wrap(text: str, width: int = 48) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _save(fig: Any, path: Path) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path.read_bytes()


def roc_curves(oof: pd.DataFrame, order: list[str], selected: str, path: Path) -> bytes:
    """Pooled out-of-fold ROC curve of every model (the selected one drawn thick)."""
    fig, (ax, zoom) = _figure(11.0, 4.8, ncols=2)
    for key in order:
        y, p = pooled_oof(oof, key)
        fpr, tpr, _ = roc_curve(y, p)
        auc = roc_auc_score(y, p)
        style = {"lw": 2.6, "zorder": 3} if key == selected else {"lw": 1.0, "alpha": 0.8}
        dashes = {"ls": "--"} if MODELS[key].baseline else {}
        for axis in (ax, zoom):
            axis.plot(fpr, tpr, label=f"{MODELS[key].label} ({auc:.4f})", **style, **dashes)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="1 - specificity (false positive rate)",
        ylabel="sensitivity (true positive rate)",
        title="ROC, pooled out-of-fold (AUC in legend)",
    )
    zoom.set(xlim=(0, 0.2), ylim=(0.8, 1.0), xlabel="false positive rate", title="zoom: top-left")
    ax.legend(loc="lower right", fontsize=7)
    for axis in (ax, zoom):
        axis.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(
    matrix: list[list[int]], threshold: float, path: Path, note: str = "pooled out-of-fold"
) -> bytes:
    fig, ax = _figure(4.8, 4.2)
    ax.imshow(matrix, cmap="Blues")
    labels = ["benign", "malignant"]
    total = sum(sum(r) for r in matrix)
    for i in range(2):
        for j in range(2):
            value = matrix[i][j]
            ax.text(
                j,
                i,
                f"{value}\n({value / total:.1%})",
                ha="center",
                va="center",
                color="white" if value > total / 3 else "black",
                fontsize=12,
            )
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"Selected model, held-out, each fold at its own threshold (served: {threshold:.3f})"
        f"\n({_wrap(note)})",
    )
    return _save(fig, path)


def calibration(calibrated_oof: pd.DataFrame, keys: list[str], path: Path) -> bytes:
    """Reliability diagrams of held-out predictions: uncalibrated (left) vs calibrated (right)."""
    fig, axes = _figure(11.0, 5.0, ncols=2)
    for ax, column, title in (
        (axes[0], "p_raw", "before: classifier output (SMOTE-trained)"),
        (axes[1], "p_calibrated", "after: sigmoid calibrated inside the folds (served)"),
    ):
        ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfectly calibrated")
        for key in keys:
            rows = calibrated_oof[calibrated_oof["model"] == key]
            frac, mean_pred = calibration_curve(
                rows["y_true"], rows[column], n_bins=10, strategy="quantile"
            )
            ax.plot(mean_pred, frac, marker="o", ms=3, label=MODELS[key].label)
        ax.set(
            xlabel="mean predicted P(malignant)",
            ylabel="observed fraction malignant",
            title=f"{title}\npooled held-out rows, 10 quantile bins",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def leaderboard(summaries: dict[str, Any], order: list[str], metric: str, path: Path) -> bytes:
    """Mean and 95% CI of the selection metric per model."""
    fig, ax = _figure(7.0, 0.45 * len(order) + 1.4)
    means = [summaries[k]["cv"][metric]["mean"] for k in order]
    lows = [summaries[k]["cv"][metric]["ci_low"] for k in order]
    highs = [summaries[k]["cv"][metric]["ci_high"] for k in order]
    ys = list(range(len(order)))[::-1]
    ax.errorbar(
        means,
        ys,
        xerr=[
            [m - lo for m, lo in zip(means, lows, strict=True)],
            [hi - m for m, hi in zip(means, highs, strict=True)],
        ],
        fmt="o",
        capsize=3,
    )
    ax.set_yticks(ys, [MODELS[k].label for k in order], fontsize=8)
    ax.set(xlabel=f"{metric} (mean, 95% CI over outer folds)", title="Leaderboard")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def pairwise_heatmap(selection: dict[str, Any], order: list[str], path: Path) -> bytes:
    """p of every model pair on the selection metric: Holm-adjusted below the diagonal, raw
    above."""
    metric = selection["metric"]
    index = {k: i for i, k in enumerate(order)}
    grid = np.full((len(order), len(order)), np.nan)
    for row in selection["pairwise"]:
        if row["metric"] == metric and row["a"] in index and row["b"] in index:
            low, high = sorted((index[row["a"]], index[row["b"]]))
            grid[high, low], grid[low, high] = row["p_holm"], row["p"]
    fig, ax = _figure(0.62 * len(order) + 3.2, 0.55 * len(order) + 2.0)
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0)
    for i, j in zip(*np.where(np.isfinite(grid)), strict=True):
        mark = "*" if grid[i, j] < selection["alpha"] else ""
        ax.text(j, i, f"{grid[i, j]:.2f}{mark}", ha="center", va="center", fontsize=7)
    labels = [MODELS[k].label.split(" (")[0] for k in order]
    ax.set_xticks(range(len(order)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(order)), labels, fontsize=7)
    fig.colorbar(image, ax=ax, label="p")
    ax.set_title(
        f"Corrected paired t-test on {metric}: Holm-adjusted p below the diagonal, raw p above "
        f"(* = p < {selection['alpha']})",
        fontsize=8,
    )
    return _save(fig, path)


def decision_curve(curves: dict[str, Any], path: Path) -> bytes:
    """Net benefit over the threshold range, with the treat-all and treat-none references."""
    fig, ax = _figure(6.4, 4.6)
    pts = curves["thresholds"]
    ax.plot(pts, curves["treat_all"], color="grey", ls="--", lw=1.0, label="treat all")
    ax.plot(pts, curves["treat_none"], color="black", lw=0.8, label="treat none")
    for key, curve in curves["models"].items():
        line = ax.plot(pts, curve["net_benefit"], lw=1.8, label=MODELS[key].label)[0]
        ax.fill_between(
            pts,
            curve["min_over_repeats"],
            curve["max_over_repeats"],
            color=line.get_color(),
            alpha=0.2,
        )
    top = max(max(c["net_benefit"]) for c in curves["models"].values())
    ax.set(
        ylim=(-0.05, top + 0.05),
        xlabel="threshold probability pt (biopsy when P(malignant) >= pt)",
        ylabel="net benefit",
        title="Decision curve, out-of-fold (band: min-max over repeats)",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)
