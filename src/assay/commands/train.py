"""`assay train`: run the training pipeline locally through kfp.local, or on Kubeflow.

The training flags are the fields of ``TrainingSettings`` (name, default, help, ``ASSAY_<NAME>``),
which are also the parameters of ``pipelines/assay_pipelines/training.py``; the local runner
executes that very
pipeline (kfp.local, SubprocessRunner; ``--runner docker``: DockerRunner, each step in a container
of the project image, the train step on a Ray head container), not a parallel code path.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from assay.classify.config import TrainingSettings as TS
from assay.commands._common import deprecated_spelling, setting, settings_from, user_errors
from assay.commands._docker import IMAGE_OPTION, step_image
from assay.errors import UsageError
from assay.workflow.local import LocalRun
from assay.workflow.progress import StepProgress
from assay.workflow.remote import submit_pipeline
from assay.workflow.run_folder import default_run_dir

console = Console()
err_console = Console(stderr=True)

RUNNER_OPTIONS = (
    "out",
    "runner",
    "image",
    "host",
    "experiment",
    "run_name",
    "namespace",
    "workers",
)
"""Options of the command, not of the training: where and how the pipeline runs (``workers``:
the old spelling of --ray-cpus)."""


class Runner(StrEnum):
    local = "local"
    docker = "docker"
    kfp = "kfp"


class Impute(StrEnum):
    none = "none"
    median = "median"


@user_errors
def train(
    data: str = setting(TS, "data"),
    target: str = setting(TS, "target"),
    impute: Impute = setting(TS, "impute", choices=Impute),
    k_features: int = setting(TS, "k_features"),
    folds: int = setting(TS, "folds"),
    repeats: int = setting(TS, "repeats"),
    tuning_iter: int = setting(TS, "tuning_iter"),
    models: str = setting(TS, "models"),
    seed: int = setting(TS, "seed"),
    ray_cpus: int = setting(TS, "ray_cpus"),
    target_sensitivity: float = setting(TS, "target_sensitivity"),
    registry: str | None = setting(TS, "registry", unset=True),
    model_name: str = setting(TS, "model_name"),
    deploy: bool = setting(TS, "deploy", "--deploy/--no-deploy"),
    canary_percent: int = setting(TS, "canary_percent"),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder for metrics, report and plots (default runs/<timestamp>)."
    ),
    runner: Runner = typer.Option(
        Runner.local,
        "--runner",
        help="'local': kfp.local on this machine; 'docker': kfp.local with every step in a "
        "container of --image and a Ray head container (DOCKER_HOST: Docker or podman's "
        "socket); 'kfp': submit to a Kubeflow Pipelines --host.",
    ),
    image: str | None = IMAGE_OPTION,
    host: str | None = typer.Option(
        None, "--host", envvar="KFP_HOST", help="Kubeflow Pipelines API URL (--runner kfp)."
    ),
    experiment: str = typer.Option(
        "assay", "--experiment", help="Kubeflow experiment name (--runner kfp)."
    ),
    run_name: str | None = typer.Option(None, "--run-name", help="Kubeflow run name."),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Kubeflow namespace (multi-user deployments)."
    ),
    workers: int | None = typer.Option(None, "--workers", hidden=True),
) -> None:
    """Train the diagnostic classifier by running the training pipeline.

    Steps: validate data, VIF table, 8 ensembles + a baseline under repeated stratified CV with
    nested tuning on Ray, clinical threshold, report, registration of a new model version.
    Locally the pipeline runs through kfp.local; --runner kfp sends it to Kubeflow.
    """
    old = deprecated_spelling(
        workers, old_flag="--workers", old_env="ASSAY_WORKERS", new="--ray-cpus / ASSAY_RAY_CPUS"
    )
    if workers is not None or (old is not None and not os.environ.get("ASSAY_RAY_CPUS")):
        ray_cpus = old
    settings = settings_from(TS, locals())  # the options named like its fields

    # The training stack (scikit-learn, pandas, kfp) loads when the command runs, not on --help.
    from assay.commands import _train_run as training
    from assay_pipelines.training import training_pipeline

    settings = training.checked_settings(settings, local=runner is not Runner.kfp)
    if runner is Runner.kfp:
        _submit(training_pipeline, settings, host, experiment, run_name, namespace)
        return
    run_dir = (out or default_run_dir()).absolute()
    where = "kfp.local"
    if runner is Runner.docker:
        where = f"kfp.local, every step in a container of {step_image(image)}"
    err_console.print(f"Running pipeline [bold]assay-training[/] with {where} into {run_dir}")
    counters = {training.TRAIN_TASK: training.cv_counter(settings, run_dir)}
    with StepProgress(err_console, training.STEP_TITLES, counters) as steps:
        if runner is Runner.docker:
            result = training.run_training_in_containers(
                training_pipeline, settings, run_dir, step_image(image), steps.on_task
            )
        else:
            result = training.run_training_locally(
                training_pipeline, settings, run_dir, steps.on_task
            )
    _print_result(result)


def _print_result(result: LocalRun) -> None:
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    scalars = metrics.get("scalar_metrics", {})
    console.print(f"[bold]Selected model:[/] {metrics.get('selected_model')}")
    if "roc_auc_mean" in scalars:
        console.print(
            f"  ROC-AUC {scalars['roc_auc_mean']:.4f} "
            f"(95% CI {scalars.get('roc_auc_ci_low', float('nan')):.4f}-"
            f"{scalars.get('roc_auc_ci_high', float('nan')):.4f})"
        )
    if "clinical_sensitivity_heldout_mean" in scalars:
        console.print(
            f"  clinical threshold {scalars['clinical_threshold']:.4f}: held-out sensitivity "
            f"{scalars['clinical_sensitivity_heldout_mean']:.4f}, specificity "
            f"{scalars['clinical_specificity_heldout_mean']:.4f} (apparent "
            f"{scalars['clinical_sensitivity_apparent']:.4f} / "
            f"{scalars['clinical_specificity_apparent']:.4f})"
        )
    console.print(f"[bold]Run folder:[/] {result.run_dir}")
    for name in ("metrics.json", "report.html", "model"):
        if name in result.files:
            console.print(f"  {name:<13}{result.files[name]}")
    console.print(f"  {'pipeline log':<13}{result.run_dir / 'pipeline.log'}")
    registered = result.record.get("registered", {})
    if registered.get("version"):
        console.print(f"[bold]Registered:[/] {registered['version']}  {registered['model_uri']}")


def _submit(
    pipeline: object,
    settings: TS,
    host: str | None,
    experiment: str,
    run_name: str | None,
    namespace: str | None,
) -> None:
    if not host:
        raise UsageError(
            "--runner kfp needs --host URL (or KFP_HOST) of the Kubeflow Pipelines API."
        )
    from assay.commands._train_run import PIPELINE_NAME

    submitted = submit_pipeline(
        pipeline,
        settings.arguments(),
        name=PIPELINE_NAME,
        host=host,
        experiment=experiment,
        run_name=run_name,
        namespace=namespace,
    )
    console.print(f"Submitted run {submitted['run_id']} to experiment {submitted['experiment']}")
    console.print(submitted["url"])
