"""`assay bias-study`: run the bias-study pipeline locally through kfp.local.

The flags are the fields of ``BiasStudySettings`` (name, default, help, ``ASSAY_<NAME>``). With
no input options it needs no keys: a synthetic corpus with known publisher effects is generated,
the simulated LLM endpoint is started for the run (its hidden truth is the corpus's true scores)
and stopped afterwards, and the bundled simulated ensemble rates the passages; the endpoint's
URL reaches the rate step as the pipeline parameter ``sim_url``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from assay.bias.config import BiasStudySettings as BS
from assay.commands._common import deprecated_spelling, setting, settings_from, user_errors
from assay.commands._docker import IMAGE_OPTION, input_mounts, ray_cpus, step_image
from assay.errors import UsageError
from assay.workflow.containers import Mount, StepContainers, container_run, service
from assay.workflow.local import LocalJob, run_locally
from assay.workflow.progress import StepProgress
from assay.workflow.run_folder import TaskOutput, default_run_dir

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
RUNNER_OPTIONS = ("out", "raters", "runner", "image")
"""Options of the command, not of the study (``--raters``: the old spelling of --ensemble)."""
SIM_PORT = 8000
Services = Callable[[Any, StepContainers], contextlib.AbstractContextManager[dict[str, str]]]


class Runner(StrEnum):
    local = "local"
    docker = "docker"


class ScaleChoice(StrEnum):
    auto = "auto"
    interval = "interval"
    binary = "binary"
    ordinal = "ordinal"


@user_errors
def bias_study(
    corpus: Path | None = setting(BS, "corpus"),
    babe: Path | None = setting(BS, "babe"),
    ratings: Path | None = setting(BS, "ratings"),
    ensemble: str | None = setting(BS, "ensemble"),
    scale: ScaleChoice = setting(BS, "scale", choices=ScaleChoice),
    passages: int = setting(BS, "passages"),
    textbooks: int = setting(BS, "textbooks"),
    draws: int = setting(BS, "draws"),
    tune: int = setting(BS, "tune"),
    chains: int = setting(BS, "chains"),
    n_boot: int = setting(BS, "n_boot"),
    seed: int = setting(BS, "seed"),
    rope: float = setting(BS, "rope"),
    reference_publisher: str = setting(BS, "reference_publisher"),
    concurrency: int = setting(BS, "concurrency"),
    budget: float | None = setting(BS, "budget"),
    no_budget_cap: bool = setting(BS, "no_budget_cap"),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder (default runs/bias-<UTC timestamp>)."
    ),
    raters: str | None = typer.Option(None, "--raters", hidden=True),
    runner: Runner = typer.Option(
        Runner.local,
        "--runner",
        help="'local': kfp.local on this machine; 'docker': every step in a container of "
        "--image, with a Ray head and the simulated endpoint in containers beside them "
        "(DOCKER_HOST: Docker or podman's socket).",
    ),
    image: str | None = IMAGE_OPTION,
) -> None:
    """Run the bias study: rate passages with an LLM ensemble (or import ratings), measure
    agreement (Krippendorff's alpha), fit the Bayesian publisher-effects model, write a report.

    Before any call (and before the run folder exists) the ensemble, its keys and its models
    are checked and the worst-case cost and shortest duration printed; rating with --ensemble
    needs --budget, --no-budget-cap or a yes at the prompt.

    Exit codes: 0 ok, 2 bad input (nothing started), 4 convergence diagnostics failed (see the
    report).
    """
    ensemble = ensemble or deprecated_spelling(
        raters, old_flag="--raters", old_env="ASSAY_RATERS", new="--ensemble / ASSAY_ENSEMBLE"
    )
    settings = settings_from(BS, locals())  # the options named like its fields

    from assay.bias.study import corpus_passages, write_corpus_input
    from assay.sim import start_sim_server

    run_dir = (out or default_run_dir("bias-")).absolute()
    in_containers = step_image(image) if runner is Runner.docker else None
    imported = settings.imported
    if imported is not None:
        if not imported.exists():
            raise UsageError(f"{imported} does not exist.")
        kind = "babe" if settings.babe is not None else "ratings"
        check_imported(kind, imported)
        arguments = settings.pipeline_arguments(kind=kind, source=str(imported.absolute()))
        run_study(arguments, run_dir, in_containers)
        return
    frame, given = corpus_passages(
        settings.corpus, settings.passages, settings.textbooks, settings.seed
    )
    texts = [str(text) for text in frame["text"]]
    if settings.ensemble is not None:
        budget_usd = preflight(settings, texts)
        corpus_file = given or write_corpus_input(frame, run_dir)
        arguments = corpus_arguments(settings, corpus_file, run_dir, budget_usd)
        run_study(arguments, run_dir, in_containers)
        return
    corpus_file = given or write_corpus_input(frame, run_dir)
    with start_sim_server(config=sim_config_for(corpus_file, settings.seed)) as sim:
        err_console.print(f"Simulated LLM endpoint (no keys needed) at {sim.base_url}")
        preflight(settings, texts, {"ASSAY_SIM_URL": sim.base_url})
        arguments = corpus_arguments(settings, corpus_file, run_dir, settings.budget or 0.0)
        if in_containers is None:
            run_study({**arguments, "sim_url": sim.base_url}, run_dir)
            return
    services = sim_container(corpus_file, settings.seed)
    run_study(arguments, run_dir, in_containers, services)


def check_imported(kind: str, source: Path) -> None:
    """Validate imported ratings before the run starts (DataValidationError, exit 2)."""
    if kind == "babe":
        from assay.bias.babe import check_babe_folder

        check_babe_folder(source)
        return
    from assay.bias.corpus import read_table, validate_ratings

    validate_ratings(read_table(source), source=str(source))


def corpus_arguments(
    settings: BS, corpus_file: Path, run_dir: Path, budget_usd: float
) -> dict[str, Any]:
    return settings.pipeline_arguments(
        kind="corpus",
        source=str(corpus_file),
        store_dir=str(run_dir / "ratings-store"),
        ensemble=settings.ensemble_ref or "",
        budget_usd=budget_usd,
    )


def preflight(settings: BS, texts: list[str], extra_env: dict[str, str] | None = None) -> float:
    """Check the ensemble before any call, print what the run may cost and take, settle the
    budget (USD, 0 = no cap); ConfigError/UsageError (exit 2) when it must not start."""
    from assay.bias.study import preflight_study
    from assay.llm.preflight import describe_minutes

    environ = {**os.environ, **(extra_env or {})}
    checked = preflight_study(settings.ensemble_ref, texts, environ)
    plan = checked.plan
    for note in checked.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    raters = ", ".join(f"{r}={c.model}" for r, c in checked.ensemble.raters.items())
    err_console.print(
        f"Preflight: ensemble {checked.ensemble.name!r} ({raters}): keys and models checked. "
        f"{len(texts)} passages x {len(plan.raters)} raters: worst case "
        f"${plan.worst_case_usd:.2f}, at least {describe_minutes(plan.min_minutes)} at the "
        "configured rate limits"
        + (
            " (illustrative prices: the simulated raters charge nothing)."
            if not settings.ensemble
            else "."
        )
    )
    if settings.budget is not None:
        return settings.budget
    if settings.ensemble is None or settings.no_budget_cap or not checked.paid:
        return 0.0
    return _confirm_uncapped(plan.worst_case_usd)


def _confirm_uncapped(worst_case_usd: float) -> float:
    if not sys.stdin.isatty():
        raise UsageError(
            f"Rating with --ensemble may cost up to ${worst_case_usd:.2f}: give --budget USD, "
            "or --no-budget-cap to rate without a cap."
        )
    if not typer.confirm(f"No --budget: spend up to ${worst_case_usd:.2f}?", default=False):
        raise UsageError("Not started: give --budget USD to cap the spending.")
    return 0.0


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


def sim_container(corpus_file: Path, seed: int) -> Services:
    """The simulated endpoint as a container beside the steps (as the dev overlay runs it
    beside the pipelines), with the corpus's true scores; the rate step reaches it by name."""

    from assay.sim.server import READY_LINE

    @contextlib.contextmanager
    def started(client: Any, steps: StepContainers) -> Iterator[dict[str, str]]:
        name = f"assay-sim-llm-{steps.run_id}"
        command = ["assay", "sim-llm", "--host", "0.0.0.0", "--port", str(SIM_PORT)]
        command += ["--seed", str(seed), "--truth", str(corpus_file)]
        with service(client, steps, name, command, READY_LINE):
            err_console.print(f"Simulated LLM endpoint (no keys needed) in container {name}")
            yield {"ASSAY_SIM_URL": f"http://{name}:{SIM_PORT}"}

    return started


def run_study(
    arguments: dict[str, Any],
    run_dir: Path,
    image: str | None = None,
    services: Services | None = None,
) -> None:
    """Run the pipeline with kfp.local into run_dir (the study folder at its top), print the
    summary; DiagnosticsError (exit 4) if the model did not converge. ``image``: every step
    in a container of it, with a Ray head container and ``services`` beside them."""
    from assay.bias.diagnostics import DiagnosticsError
    from assay.bias.study import diagnostics_passed
    from assay_pipelines.bias_study import bias_study_pipeline

    job = LocalJob(
        name=PIPELINE,
        pipeline=bias_study_pipeline,
        arguments=arguments,
        outputs=(TaskOutput(REPORT_TASK, REPORT_OUTPUT),),
        summarise=lambda run: {"diagnostics_passed": diagnostics_passed(run.run_dir)[0]},
    )
    where = "kfp.local" if image is None else f"kfp.local, every step in a container of {image}"
    err_console.print(f"Running pipeline [bold]assay-bias-study[/] with {where} into {run_dir}")
    with StepProgress(err_console, STEP_TITLES) as progress:
        if image is None:
            run_locally(job, run_dir, progress.on_task)
        else:
            mounts = [Mount(run_dir, writable=True)]
            mounts += input_mounts([arguments.get("source"), arguments.get("ensemble")])
            mounts += _store_mount(arguments.get("store_dir", ""))
            with container_run(image, mounts, ray_cpus=ray_cpus(0), services=services) as (
                _,
                steps,
            ):
                run_locally(job, run_dir, progress.on_task, steps)
    print_summary(run_dir)
    passed, failures = diagnostics_passed(run_dir)
    if not passed:
        raise DiagnosticsError(
            "The model's convergence diagnostics FAILED (" + "; ".join(failures) + "); do not "
            f"trust the estimates. See {run_dir / 'report.html'}."
        )


def _store_mount(store_dir: str) -> list[Mount]:
    if not store_dir or store_dir.startswith("s3://"):
        return []
    return [Mount(Path(store_dir).absolute(), writable=True)]


def print_summary(run_dir: Path) -> None:
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
    for column in ("publisher", "passages", "effect vs reference", "95% HDI", "verdict"):
        table.add_column(column)
    for e in sorted(summary["publisher_effects"], key=lambda e: e["mean"]):
        headline = (e.get("verdicts") or [e])[0]  # the estimate the verdict is about
        table.add_row(
            e["publisher"],
            str(e["n_passages"]),
            f"{headline['mean']:+.3f}",
            f"[{headline['hdi_low']:+.3f}, {headline['hdi_high']:+.3f}]",
            e["verdict"],
        )
    console.print(table)
    first = summary["publisher_effects"][0] if summary["publisher_effects"] else {}
    if first.get("verdict_reference"):
        console.print(
            f"Effects and verdicts vs {first['verdict_reference']}: "
            f"{first['verdict_assumption']}. Other references: report.html"
        )
    status = "[green]passed[/]" if diag["passed"] else "[bold red]FAILED[/]"
    console.print(
        f"Diagnostics {status}: max R-hat {diag['rhat_max']:.4f}, min ESS bulk "
        f"{diag['ess_bulk_min']:.0f} / tail {diag['ess_tail_min']:.0f}, divergences "
        f"{diag['divergences']}, min BFMI {diag['bfmi_min']:.2f}{rerun_note(diag)}"
    )
    if summary.get("recovery"):
        covered = summary["recovery"]["all_covered"]
        console.print(
            f"Known publisher effects covered by their 95% HDIs: {covered} (one synthetic "
            "dataset: a sanity check, not a coverage rate)"
        )
    console.print(
        f"[bold]Run folder:[/] {run_dir}  (report.html, summary.json, agreement.json, "
        "posterior.nc, ratings.parquet)"
    )
