"""`assay submit`: send a pipeline to a Kubeflow Pipelines endpoint (kfp.Client)."""

from __future__ import annotations

import typer
from rich.console import Console

from assay.commands._common import user_errors
from assay.workflow.remote import parse_parameters, submit_pipeline

console = Console()


@user_errors
def submit(
    pipeline: str = typer.Argument("training", help="Pipeline name (see `assay compile`)."),
    host: str = typer.Option(
        ..., "--host", envvar="KFP_HOST", help="Kubeflow Pipelines API URL, e.g. http://host:8888."
    ),
    experiment: str = typer.Option("assay", "--experiment", help="Experiment to file the run in."),
    run_name: str | None = typer.Option(
        None, "--run-name", help="Run name (default: timestamped)."
    ),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Kubeflow namespace (multi-user deployments)."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        help="Pipeline parameter NAME=VALUE (repeatable), e.g. --param repeats=3.",
    ),
) -> None:
    """Submit a pipeline run to a Kubeflow Pipelines endpoint.

    A bearer token, if the endpoint needs one, is read from KFP_TOKEN.
    """
    from assay_pipelines import get_pipeline

    chosen = get_pipeline(pipeline)
    arguments = parse_parameters(chosen, param or [], name=pipeline)
    submitted = submit_pipeline(
        chosen,
        arguments,
        name=pipeline,
        host=host,
        experiment=experiment,
        run_name=run_name,
        namespace=namespace,
    )
    console.print(f"Submitted run {submitted['run_id']} to experiment {submitted['experiment']}")
    console.print(submitted["url"])
