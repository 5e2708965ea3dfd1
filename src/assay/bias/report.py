"""The bias-study report: a self-contained HTML page built from the run folder's artifacts.

Reads ``study.json``, ``agreement.json``, ``summary.json`` and ``posterior.nc``; writes PNG
figures under ``figures/`` and ``report.html`` with the figures embedded (base64), so the
page can be mailed or archived on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from assay.bias import report_sections as sections
from assay.bias.io import atomic_write_text
from assay.bias.report_summary import headline_rows, summary_lines
from assay.obs import html

_VERDICT_COLOURS = {
    "right": "#b2182b",
    "left": "#2166ac",
    "more": "#b2182b",
    "less": "#2166ac",
    "above": "#b2182b",
    "below": "#2166ac",
}


def _colour(verdict: str) -> str:
    for word, colour in _VERDICT_COLOURS.items():
        if word in verdict.split():
            return colour
    return "#555555"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forest_plot(summary: dict[str, Any], path: Path) -> None:
    """The headline estimates (the ones the verdicts are about): mean and 95% HDI against the
    headline reference, coloured by verdict, with the region of practical equivalence."""
    plt = _pyplot()
    rows = sorted(headline_rows(summary), key=lambda r: r["mean"])
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 2.0))
    rope = (summary.get("verdicts") or {}).get("rope")
    if rope:
        ax.axvspan(rope[0], rope[1], color="#dddddd", zorder=0, label="ROPE")
    for i, r in enumerate(rows):
        colour = _colour(r["verdict"])
        ax.plot([r["hdi_low"], r["hdi_high"]], [i, i], color=colour, lw=2.5)
        ax.plot(r["mean"], i, "o", color=colour, ms=7)
    ax.set_yticks(range(len(rows)), [f"{r['publisher']} (n={r['n_passages']})" for r in rows])
    reference = rows[0]["reference"] if rows else "reference"
    units = {
        "interval": "score points, -2 liberal ... +2 conservative",
        "binary": "logit of 'biased'",
    }.get(summary["scale"], "latent scale")
    ax.set_xlabel(
        f"difference vs {reference} ({units})\nshaded: region of practical equivalence (ROPE)"
    )
    ax.axvline(0.0, color="grey", ls="--", lw=1)
    ax.set_title(
        "Publisher effects as judged by the verdicts: mean and 95% HDI\n(colour: verdict)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rater_plot(summary: dict[str, Any], path: Path) -> None:
    """Rater offsets (sum to zero) and rater scales with 95% HDIs."""
    plt = _pyplot()
    offsets, scales = summary["rater_offsets"], summary["rater_scales"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.4 * len(offsets) + 1.6), sharey=True)
    for ax, rows, title, ref in (
        (axes[0], offsets, "rater offset (sum to zero)", 0.0),
        (axes[1], scales, "rater scale", 1.0 if summary["scale"] != "interval" else None),
    ):
        for i, r in enumerate(rows):
            ax.plot([r["hdi_low"], r["hdi_high"]], [i, i], color="#1b7837", lw=2.5)
            ax.plot(r["mean"], i, "o", color="#1b7837")
        if ref is not None:
            ax.axvline(ref, color="grey", ls="--", lw=1)
        ax.set_title(title)
    axes[0].set_yticks(range(len(offsets)), [r["rater"] for r in offsets])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ppc_plot(idata: Any, summary: dict[str, Any], path: Path) -> None:
    """Observed vs prior- and posterior-replicated ratings: distribution and per-publisher mean."""
    plt = _pyplot()
    observed = idata.observed_data["y"].to_numpy().astype(float)
    posterior = idata.posterior_predictive["y"].to_numpy().reshape(-1, observed.size)
    prior = idata.prior_predictive["y"].to_numpy().reshape(-1, observed.size)
    publisher = idata.constant_data["obs_publisher"].to_numpy()
    names = [
        e["publisher"] for e in sorted(summary["publisher_effects"], key=lambda e: e["publisher"])
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    discrete = summary["scale"] != "interval"
    if discrete:
        levels = np.arange(int(max(observed.max(), posterior.max())) + 1)
        for ax, draws, title in (
            (axes[0], prior, "prior predictive"),
            (axes[1], posterior, "posterior predictive"),
        ):
            shares = np.stack([(draws == k).mean(axis=1) for k in levels], axis=1)
            low, high = np.percentile(shares, [3, 97], axis=0)
            ax.bar(
                levels, [(observed == k).mean() for k in levels], color="#cccccc", label="observed"
            )
            ax.errorbar(
                levels,
                shares.mean(axis=0),
                yerr=[shares.mean(axis=0) - low, high - shares.mean(axis=0)],
                fmt="o",
                color="#762a83",
                label="replicated (94%)",
            )
            ax.set_xticks(levels)
            ax.set_title(f"{title}: share per category")
            ax.legend()
    else:
        bins = np.linspace(-4, 4, 65)
        for ax, draws, title in (
            (axes[0], prior, "prior predictive"),
            (axes[1], posterior, "posterior predictive"),
        ):
            for row in draws[:: max(1, len(draws) // 30)]:
                ax.hist(
                    np.clip(row, -4, 4),
                    bins=bins,
                    histtype="step",
                    density=True,
                    color="#762a83",
                    alpha=0.15,
                )
            ax.hist(
                observed,
                bins=bins,
                histtype="step",
                density=True,
                color="black",
                lw=2,
                label="observed",
            )
            ax.set_title(f"{title}: score distribution")
            ax.legend()
    rep_means = np.stack([posterior[:, publisher == j].mean(axis=1) for j in range(len(names))], 1)
    obs_means = [observed[publisher == j].mean() for j in range(len(names))]
    low, high = np.percentile(rep_means, [3, 97], axis=0)
    y = np.arange(len(names))
    axes[2].hlines(y, low, high, color="#762a83", lw=4, alpha=0.5, label="replicated 94%")
    axes[2].plot(obs_means, y, "k|", ms=14, mew=2, label="observed")
    axes[2].set_yticks(y, names)
    axes[2].set_title("posterior predictive: mean per publisher")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


HEADLINE_COLUMNS = [
    ("publisher", "publisher"),
    ("n_passages", "passages"),
    ("raw_mean_rating", "raw mean rating"),
    ("reference", "vs"),
    ("mean", "difference"),
    ("hdi_low", "HDI low"),
    ("hdi_high", "HDI high"),
    ("verdict", "verdict"),
    ("average_rater_effect", "average-rater effect"),
]
PER_RATER_COLUMNS = [
    ("rater", "rater"),
    ("n_rated", "rated"),
    ("alpha_vs_others", "alpha vs others"),
    ("n_vs_others", "n"),
    ("alpha_vs_truth", "alpha vs truth"),
    ("n_vs_truth", "n"),
]
PAIRWISE_COLUMNS = [
    ("rater_a", "rater A"),
    ("rater_b", "rater B"),
    ("n", "n"),
    ("pearson", "Pearson"),
    ("spearman", "Spearman"),
    ("rmse", "RMSE"),
]
FIGURES = ("forest", "raters", "ppc", "ppc_new", "textbooks")


def rerun_note(diag: dict[str, Any]) -> str:
    """Says when the fit was re-run once at a higher target acceptance (see bayes.fit)."""
    attempts = diag.get("attempts") or []
    if len(attempts) < 2:
        return ""
    first, last = attempts[0], attempts[-1]
    reasons = "; ".join(first.get("failures") or []) or f"{first['divergences']} divergences"
    return (
        f" (sampled twice: the first run at target acceptance {first['target_accept']:g} "
        f"failed ({reasons}); the re-run at {last['target_accept']:g} with "
        f"{last.get('tune', '?')} + {last.get('draws', '?')} draws per chain gave these figures)"
    )


def _diagnostics(diag: dict[str, Any]) -> dict[str, Any]:
    figures = (
        f"max R-hat {diag['rhat_max']:.4f} (≤ 1.01), min bulk ESS {diag['ess_bulk_min']:.0f}, "
        f"min tail ESS {diag['ess_tail_min']:.0f} (≥ {diag['ess_required']:.0f}), "
        f"divergences {diag['divergences']}, min BFMI {diag['bfmi_min']:.2f} (≥ 0.3)"
    )
    if diag.get("quadrature_error") is not None:
        figures += f", quadrature error spread {diag['quadrature_error']:.3f} nats (≤ 0.1)"
    return {
        "passed": diag["passed"],
        "figures": figures + rerun_note(diag),
        "failures": list(diag["failures"]),
    }


def _recovery(summary: dict[str, Any]) -> dict[str, Any] | None:
    rec = summary.get("recovery")
    if not rec:
        return None
    rows = [
        {**r, "hdi_low": r["contrast_hdi"][0], "hdi_high": r["contrast_hdi"][1]}
        for r in rec["publishers"]
    ]
    columns = [
        ("publisher", "publisher"),
        ("true_contrast", "true contrast"),
        ("hdi_low", "HDI low"),
        ("hdi_high", "HDI high"),
        ("covered", "covered"),
    ]
    return {
        "compared_on": rec["compared_on"],
        "all_covered": rec["all_covered"],
        "label": rec.get("label", ""),
        "table": html.record_table(rows, columns),
    }


def _friedman(agreement: dict[str, Any]) -> dict[str, Any]:
    friedman = agreement["friedman"]
    return {
        "blocks": friedman["blocks"],
        "judged_values": friedman["values"],
        "statistic": friedman.get("statistic"),
        "p_value": friedman.get("p_value"),
        "skipped": friedman.get("skipped") or "",
        "note": friedman.get("note") or "",
    }


def _ppc_table(summary: dict[str, Any]) -> html.Table:
    checks = (summary.get("predictive_checks") or {}).get("posterior_predictive", {})
    rows = [{"statistic": k, **v} for k, v in checks.items()]
    columns = [
        ("statistic", "statistic"),
        ("observed", "observed"),
        ("replicated_mean", "replicated mean"),
        ("p_value", "p"),
    ]
    return html.record_table(rows, columns)


def _mapping_table(study: dict[str, Any]) -> html.Table | None:
    mapping = study.get("publisher_mapping") or {}
    if not mapping:
        return None
    rows = [{"original": k, "normalised": v} for k, v in sorted(mapping.items())]
    return html.record_table(rows, [("original", "original"), ("normalised", "normalised")])


def render_html(run_dir: Path, figures: dict[str, Path]) -> str:
    """The report page from the run folder's JSON artifacts and the drawn figures."""
    study = json.loads((run_dir / "study.json").read_text())
    agreement = json.loads((run_dir / "agreement.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    per_rater = [{"rater": k, **v} for k, v in agreement["per_rater"].items()]
    return html.render(
        "assay.bias",
        "report.html.j2",
        title=study.get("title", run_dir.name),
        source=str(study.get("source", "")),
        summary=summary,
        agreement=agreement,
        summary_lines=summary_lines(summary, agreement),
        diagnostics=_diagnostics(summary["diagnostics"]),
        figures={
            name: html.Figure(figures[name].stem, figures[name].read_bytes())
            if name in figures
            else None
            for name in FIGURES
        },
        headline=html.record_table(headline_rows(summary), HEADLINE_COLUMNS),
        verdicts=sections.verdicts_view(summary),
        recovery=_recovery(summary),
        per_rater=html.record_table(per_rater, PER_RATER_COLUMNS),
        pairwise=html.record_table(agreement["pairwise"], PAIRWISE_COLUMNS),
        details=sections.agreement_details_view(agreement),
        friedman=_friedman(agreement),
        textbooks=sections.textbook_table(summary),
        ppc_new=sections.ppc_new_view(summary),
        ppc=_ppc_table(summary),
        sensitivity=sections.sensitivity_view(summary),
        mapping=_mapping_table(study),
        notes=json.dumps(study.get("notes", {}), indent=1),
    )


def write_report(run_dir: Path) -> Path:
    """Draw the figures and write report.html into run_dir from its stored artifacts."""
    import arviz as az

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    idata = az.from_netcdf(run_dir / "posterior.nc")
    figure_dir = run_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    figures = {name: figure_dir / f"{name}.png" for name in ("forest", "raters", "ppc")}
    forest_plot(summary, figures["forest"])
    rater_plot(summary, figures["raters"])
    ppc_plot(idata, summary, figures["ppc"])
    for name, draw in (("ppc_new", sections.ppc_new_plot), ("textbooks", sections.textbook_plot)):
        if draw(summary, figure_dir / f"{name}.png"):
            figures[name] = figure_dir / f"{name}.png"
    out = run_dir / "report.html"
    atomic_write_text(out, render_html(run_dir, figures))
    return out
