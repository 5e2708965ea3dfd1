"""The `assay` command. Sub-commands live in assay.commands.*; this file only wires them."""

from __future__ import annotations

import typer

import assay
import assay.commands.bias_study
import assay.commands.compile
import assay.commands.models
import assay.commands.predict
import assay.commands.serve
import assay.commands.sim_llm
import assay.commands.submit
import assay.commands.train
from assay.commands._common import err_console
from assay.obs.logging import LOG_LEVELS, configure_logging

app = typer.Typer(
    name="assay",
    help=(
        "Train and serve a breast-cancer diagnostic classifier, and run an LLM-ensemble bias "
        "study - on Kubeflow Pipelines/KServe, or on this machine with embedded defaults."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"assay {assay.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_json: bool = typer.Option(False, "--log-json", help="Write logs as JSON lines."),
    log_level: str = typer.Option(
        "info", "--log-level", help=f"Least severe level logged: {', '.join(LOG_LEVELS)}."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    try:
        configure_logging(level=log_level, json=log_json)
    except ValueError as exc:
        err_console.print(
            f"[bold red]error:[/] --log-level: {exc}.", highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=2) from exc


# Sub-commands register themselves below (one line each).
app.add_typer(assay.commands.models.app, name="models")
app.command("sim-llm")(assay.commands.sim_llm.sim_llm)
app.command("train")(assay.commands.train.train)
app.command("compile")(assay.commands.compile.compile_pipelines)
app.command("submit")(assay.commands.submit.submit)
app.add_typer(assay.commands.serve.app, name="serve")
app.command("predict")(assay.commands.predict.predict)
app.command("bias-study")(assay.commands.bias_study.bias_study)
