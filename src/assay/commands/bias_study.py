"""`assay bias-study`: run the bias-study pipeline locally through kfp.local.

With no input options it needs no keys: a synthetic corpus with known publisher effects is
generated, the simulated LLM endpoint is started for the run (its hidden truth is the corpus's
true scores) and stopped afterwards, and the bundled simulated ensemble rates the passages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from assay.commands._common import user_errors

console = Console()
err_console = Console(stderr=True)

PIPELINE = "bias-study"
REPORT_TASK, REPORT_OUTPUT = "bias-report", "study"
STEP_TITLES = {
    "bias-load-corpus": "Load + validate passages",
    "bias-rate": "Rate (LLM ensemble, Ray)",
    "bias-analyse": "Aggregate + agreement",
    "bias-fit": "Bayesian publisher effects",
    "bias-report": "Report",
}


class ScaleChoice(StrEnum):
    auto = "auto"
    interval = "interval"
    binary = "binary"
    ordinal = "ordinal"


@user_errors
def bias_study(
    corpus: Path | None = typer.Option(
        None,
        "--corpus",
        help="Passage corpus (CSV, JSONL or Parquet): passage_id, text, publisher; optional "
        "textbook/source, topic, true_score. Default: a bundled synthetic corpus.",
    ),
    babe: Path | None = typer.Option(
        None,
        "--babe",
        help="Analyse BABE's expert labels from this folder (experts as raters, outlets as "
        "publishers, binary scale), e.g. ../shared/data/babe.",
    ),
    ratings: Path | None = typer.Option(
        None,
        "--ratings",
        help="Analyse a pre-collected long ratings table (passage_id, publisher, rater, score "
        "and/or biased, ...) instead of rating passages.",
    ),
    raters: Path | None = typer.Option(
        None,
        "--raters",
        help="Ensemble file (YAML/TOML) of real LLM raters; keys from the environment. "
        "Default: the bundled simulated raters on a simulated endpoint started for the run.",
    ),
    scale: ScaleChoice = typer.Option(
        ScaleChoice.auto,
        "--scale",
        help="Rating scale: interval (score -2..+2), binary (biased 0/1), ordinal; auto = "
        "binary for BABE, interval otherwise.",
    ),
    passages: int = typer.Option(600, "--passages", help="Size of the synthetic corpus."),
    textbooks: int = typer.Option(60, "--textbooks", help="Textbooks in the synthetic corpus."),
    draws: int = typer.Option(1000, "--draws", help="Posterior draws per chain."),
    tune: int = typer.Option(1000, "--tune", help="Warm-up draws per chain."),
    chains: int = typer.Option(4, "--chains", help="MCMC chains."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for alpha's CI."),
    seed: int = typer.Option(42, "--seed", help="Seed for corpus, bootstrap and sampler."),
    concurrency: int = typer.Option(32, "--concurrency", help="LLM calls in flight."),
    budget: float = typer.Option(0.0, "--budget", help="Stop rating before spending this (USD)."),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder (default runs/bias-<UTC timestamp>)."
    ),
) -> None:
    """Run the bias study: rate passages with an LLM ensemble (or import ratings), measure
    agreement (Krippendorff's alpha), fit the Bayesian publisher-effects model, write a report.

    Exit codes: 0 ok, 2 bad input, 4 convergence diagnostics failed (see the report).
    """
    from assay.errors import UsageError

    chosen = [
        name
        for name, value in (("--corpus", corpus), ("--babe", babe), ("--ratings", ratings))
        if value is not None
    ]
    if len(chosen) > 1:
        raise UsageError(f"Use only one of {', '.join(chosen)}.")
    if raters is not None and (babe or ratings):
        raise UsageError("--raters rates passages; it cannot be combined with --babe/--ratings.")
    run_dir = (out or Path("runs") / datetime.now(UTC).strftime("bias-%Y%m%d-%H%M%S")).absolute()
    arguments: dict[str, Any] = {
        "scale": "" if scale is ScaleChoice.auto else scale.value,
        "n_boot": n_boot,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "concurrency": concurrency,
        "budget_usd": budget,
    }
    if babe is not None or ratings is not None:
        source = babe if babe is not None else ratings
        assert source is not None
        if not source.exists():
            raise UsageError(f"{source} does not exist.")
        arguments.update(
            kind="babe" if babe is not None else "ratings", source=str(source.absolute())
        )
        run_study(arguments, run_dir)
        return
    from assay.bias.study import prepare_corpus_input

    corpus_file = prepare_corpus_input(corpus, run_dir, passages, textbooks, seed)
    arguments.update(
        kind="corpus",
        source=str(corpus_file),
        store_dir=str(run_dir / "ratings-store"),
        ensemble=str(raters.absolute()) if raters else "",
    )
    if raters is not None:
        run_study(arguments, run_dir)
        return
    from assay.sim import start_sim_server

    with start_sim_server(config=sim_config_for(corpus_file, seed)) as sim:
        err_console.print(f"Simulated LLM endpoint (no keys needed) at {sim.base_url}")
        arguments["sim_url"] = sim.base_url
        run_study(arguments, run_dir)


def sim_config_for(corpus_file: Path, seed: int) -> Any:
    """Simulated-endpoint settings whose hidden truth is the corpus's ``true_score``."""
    from assay.bias.corpus import read_table
    from assay.sim import SimConfig, truth_table_from_pairs

    frame = read_table(corpus_file)
    truth = {}
    if "true_score" in frame:
        rows = frame[["text", "true_score"]].dropna()
        truth = truth_table_from_pairs(zip(rows["text"], rows["true_score"], strict=True))
    return SimConfig(seed=seed, truth=truth)


def run_study(arguments: dict[str, Any], run_dir: Path) -> None:
    """Run the pipeline with kfp.local, copy the study folder to run_dir, print the summary."""
    from assay.bias.diagnostics import DiagnosticsError
    from assay.bias.study import diagnostics_passed
    from assay.workflow.local import copy_output, run_locally, write_run_record
    from pipelines import get_pipeline

    err_console.print(f"Running pipeline [bold]assay-bias-study[/] with kfp.local into {run_dir}")
    record: dict[str, Any] = {"pipeline": PIPELINE, "arguments": arguments, "status": "running"}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(run_dir, record)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console
    ) as progress:
        bars: dict[str, Any] = {}

        def on_task(event: str, name: str) -> None:
            title = STEP_TITLES.get(name, name)
            if event == "start":
                bars[name] = progress.add_task(title, total=1)
            elif name in bars:
                progress.update(bars[name], completed=1, description=f"[green]{title}")

        try:
            run = run_locally(get_pipeline(PIPELINE), arguments, run_dir, on_task=on_task)
        except Exception as exc:
            record.update(status="failed", error=str(exc))
            write_run_record(run_dir, record)
            raise
    copy_output(run.task_dir(REPORT_TASK) / REPORT_OUTPUT, run_dir)
    passed, failures = diagnostics_passed(run_dir)
    record.update(status="succeeded", diagnostics_passed=passed, kfp_run_dir=str(run.kfp_run_dir))
    write_run_record(run_dir, record)
    print_summary(run_dir)
    if not passed:
        raise DiagnosticsError(
            "The model's convergence diagnostics FAILED (" + "; ".join(failures) + "); do not "
            f"trust the estimates. See {run_dir / 'report.html'}."
        )


def print_summary(run_dir: Path) -> None:
    from rich.table import Table

    from assay.bias.io import read_json
    from assay.bias.report import rerun_note

    agreement = read_json(run_dir / "agreement.json")
    summary = read_json(run_dir / "summary.json")
    diag = summary["diagnostics"]
    console.print(
        f"Krippendorff's alpha ({agreement['level_of_measurement']}): {agreement['alpha']:.3f} "
        f"(95% CI {agreement['ci_low']:.3f}-{agreement['ci_high']:.3f}), "
        f"{agreement['n_raters']} raters, {agreement['n_units']} passages"
    )
    table = Table(title=f"Publisher effects ({summary['scale']} scale, 95% HDI)")
    for column in ("publisher", "passages", "effect", "95% HDI", "verdict"):
        table.add_column(column)
    for e in sorted(summary["publisher_effects"], key=lambda e: e["mean"]):
        table.add_row(
            e["publisher"],
            str(e["n_passages"]),
            f"{e['mean']:+.3f}",
            f"[{e['hdi_low']:+.3f}, {e['hdi_high']:+.3f}]",
            e["verdict"],
        )
    console.print(table)
    status = "[green]passed[/]" if diag["passed"] else "[bold red]FAILED[/]"
    console.print(
        f"Diagnostics {status}: max R-hat {diag['rhat_max']:.4f}, min ESS bulk "
        f"{diag['ess_bulk_min']:.0f} / tail {diag['ess_tail_min']:.0f}, divergences "
        f"{diag['divergences']}, min BFMI {diag['bfmi_min']:.2f}{rerun_note(diag)}"
    )
    if summary.get("recovery"):
        covered = summary["recovery"]["all_covered"]
        console.print(f"Known publisher effects recovered (95% HDIs cover the truth): {covered}")
    console.print(
        f"[bold]Run folder:[/] {run_dir}  (report.html, summary.json, agreement.json, "
        "posterior.nc, ratings.parquet)"
    )
