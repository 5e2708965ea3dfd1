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
from assay.bias.report_summary import SUMMARY_CSS, headline_rows, summary_box
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


def _img(path: Path) -> str:
    return html.png_img(path.read_bytes(), path.stem)


def _fmt(value: Any, digits: int = 3) -> str:
    return html.cell(value, digits)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    header = [label for _, label in columns]
    return html.table(header, [[_fmt(row.get(key)) for key, _ in columns] for row in rows])


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


def _diagnostics_banner(diag: dict[str, Any]) -> str:
    figures = (
        f"max R-hat {diag['rhat_max']:.4f} (&le; 1.01), min bulk ESS {diag['ess_bulk_min']:.0f}, "
        f"min tail ESS {diag['ess_tail_min']:.0f} (&ge; {diag['ess_required']:.0f}), "
        f"divergences {diag['divergences']}, min BFMI {diag['bfmi_min']:.2f} (&ge; 0.3)"
    )
    figures += html.escape(rerun_note(diag))
    if diag["passed"]:
        return f'<div class="ok">Diagnostics passed: {figures}.</div>'
    failures = "; ".join(html.escape(f) for f in diag["failures"])
    return (
        '<div class="fail"><strong>DIAGNOSTICS FAILED - do not trust these estimates.</strong> '
        f"{failures}.<br>{figures}.</div>"
    )


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.ok{background:#e6f4ea;border:1px solid #1b7837;padding:.7em}
.fail{background:#fde0dd;border:3px solid #b2182b;padding:1em;font-size:1.1em}
img{max-width:100%}code{background:#f3f3f3;padding:1px 4px}
"""


def render_html(run_dir: Path, figures: dict[str, Path]) -> str:
    study = json.loads((run_dir / "study.json").read_text())
    agreement = json.loads((run_dir / "agreement.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    diag = summary["diagnostics"]
    per_rater = [{"rater": k, **v} for k, v in agreement["per_rater"].items()]
    friedman = agreement["friedman"]
    parts = [
        f"<h1>Bias study: {html.escape(study.get('title', run_dir.name))}</h1>",
        f"<p>Source: <code>{html.escape(str(study.get('source', '')))}</code>; scale: "
        f"<strong>{summary['scale']}</strong>; {summary['model']['n_ratings']} valid ratings of "
        f"{summary['model']['n_passages']} passages by {summary['model']['n_raters']} raters, "
        f"{summary['model']['n_publishers']} publishers, "
        f"{summary['model']['n_textbooks']} textbooks.</p>",
        summary_box(summary, agreement),
        _diagnostics_banner(diag),
        "<h2>Publisher effects</h2>",
        f"<p>{html.escape(summary['model']['likelihood'])} model; "
        f"{html.escape(summary['model']['identification'])}. Verdict rule: "
        f"{html.escape(summary['verdict_rule'])}.</p>",
        _img(figures["forest"]),
        "<p>Table and figure show the estimate each verdict is about (the difference from the "
        "headline reference); the average-rater effect, which assumes the average rater is "
        "unbiased, is the last column.</p>",
        _table(
            headline_rows(summary),
            [
                ("publisher", "publisher"),
                ("n_passages", "passages"),
                ("raw_mean_rating", "raw mean rating"),
                ("reference", "vs"),
                ("mean", "difference"),
                ("hdi_low", "HDI low"),
                ("hdi_high", "HDI high"),
                ("verdict", "verdict"),
                ("average_rater_effect", "average-rater effect"),
            ],
        ),
        sections.verdicts_section(summary),
    ]
    if summary.get("recovery"):
        rec = summary["recovery"]
        rows = [
            {**r, "hdi_low": r["contrast_hdi"][0], "hdi_high": r["contrast_hdi"][1]}
            for r in rec["publishers"]
        ]
        parts += [
            "<h3>Recovery of the known publisher effects</h3>",
            f"<p>Compared on {html.escape(rec['compared_on'])}: "
            f"<strong>{'all covered' if rec['all_covered'] else 'NOT all covered'}</strong> "
            f"({html.escape(rec.get('label', ''))}).</p>",
            _table(
                rows,
                [
                    ("publisher", "publisher"),
                    ("true_contrast", "true contrast"),
                    ("hdi_low", "HDI low"),
                    ("hdi_high", "HDI high"),
                    ("covered", "covered"),
                ],
            ),
        ]
    parts += [
        "<h2>Raters</h2>",
        _img(figures["raters"]),
        "<h2>Agreement</h2>",
        f"<p>Krippendorff's alpha ({agreement['level_of_measurement']}): "
        f"<strong>{_fmt(agreement['alpha'])}</strong>, 95% bootstrap CI "
        f"[{_fmt(agreement['ci_low'])}, {_fmt(agreement['ci_high'])}] "
        f"({agreement['n_boot']} resamples of {agreement['n_pairable_units']} pairable units). "
        f"{agreement['n_valid_ratings']} valid and {agreement['n_failed_ratings']} failed "
        f"ratings. Truth column for per-rater alpha: {_fmt(agreement['truth_column'])}.</p>",
        _table(
            per_rater,
            [
                ("rater", "rater"),
                ("n_rated", "rated"),
                ("alpha_vs_others", "alpha vs others"),
                ("n_vs_others", "n"),
                ("alpha_vs_truth", "alpha vs truth"),
                ("n_vs_truth", "n"),
            ],
        ),
        _table(
            agreement["pairwise"],
            [
                ("rater_a", "rater A"),
                ("rater_b", "rater B"),
                ("n", "n"),
                ("pearson", "Pearson"),
                ("spearman", "Spearman"),
                ("rmse", "RMSE"),
            ],
        ),
        sections.agreement_details(agreement),
        f"<p>Friedman test across publishers (blocks: {friedman['blocks']}; "
        f"values: {friedman['values']}): statistic {_fmt(friedman.get('statistic'))}, "
        f"p = {_fmt(friedman.get('p_value'), 4)}"
        f"{'; ' + html.escape(friedman['skipped']) if friedman.get('skipped') else ''}"
        f"{' (' + html.escape(friedman['note']) + ')' if friedman.get('note') else ''}.</p>",
        "<h2>Textbooks</h2>",
        *([_img(figures["textbooks"])] if "textbooks" in figures else []),
        sections.textbook_section(summary),
        "<h2>Posterior predictive checks: new passages</h2>",
        *([_img(figures["ppc_new"])] if "ppc_new" in figures else []),
        sections.ppc_new_section(summary),
        "<h3>Conditional check (little power)</h3>",
        "<p>Replications below keep each passage's effect conditioned on its own ratings and "
        "compare means the model fits directly, so their p-values sit near 0.5 by construction; "
        "kept for reference only.</p>",
        _img(figures["ppc"]),
        _ppc_table(summary),
        sections.sensitivity_section(summary),
        "<h2>Inputs</h2>",
        _mapping(study),
        f"<pre>{html.escape(json.dumps(study.get('notes', {}), indent=1))}</pre>",
    ]
    return html.page("assay bias study", _CSS + SUMMARY_CSS, parts)


def _ppc_table(summary: dict[str, Any]) -> str:
    checks = (summary.get("predictive_checks") or {}).get("posterior_predictive", {})
    rows = [{"statistic": k, **v} for k, v in checks.items()]
    return "<p>Posterior predictive p-values (share of replications >= observed):</p>" + _table(
        rows,
        [
            ("statistic", "statistic"),
            ("observed", "observed"),
            ("replicated_mean", "replicated mean"),
            ("p_value", "p"),
        ],
    )


def _mapping(study: dict[str, Any]) -> str:
    mapping = study.get("publisher_mapping") or {}
    if not mapping:
        return "<p>Publisher names needed no normalisation.</p>"
    rows = [{"original": k, "normalised": v} for k, v in sorted(mapping.items())]
    return "<p>Publisher names normalised (case, whitespace, punctuation):</p>" + _table(
        rows, [("original", "original"), ("normalised", "normalised")]
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
