"""`assay train`: run the training pipeline locally through kfp.local, or on Kubeflow.

Every option maps one-to-one to a parameter of ``pipelines/training.py``; the local runner
executes that very pipeline (kfp.local, SubprocessRunner), not a parallel code path.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from assay.commands._common import user_errors
from assay.workflow.training import TrainingParams

console = Console()
err_console = Console(stderr=True)

STEP_TITLES = {
    "load-data": "Load + validate data",
    "compute-vif": "VIF table",
    "train-models": "Train with CV (Ray)",
    "evaluate-models": "Evaluate + report",
    "register-model": "Register model",
}


class Runner(StrEnum):
    local = "local"
    kfp = "kfp"


class Impute(StrEnum):
    none = "none"
    median = "median"


@user_errors
def train(
    data: str | None = typer.Option(
        None,
        "--data",
        help=(
            "CSV with the 30 WDBC feature names (scikit-learn spelling, any order) and a target "
            "column (M/B, malignant/benign or 1/0); an id column is ignored. Default: the WDBC "
            "data bundled with scikit-learn. With --runner kfp: a path in the image or "
            "s3://bucket/key.csv."
        ),
    ),
    target: str = typer.Option("diagnosis", "--target", help="Name of the label column."),
    impute: Impute = typer.Option(
        Impute.none, "--impute", help="Missing values: 'none' (an error) or 'median'."
    ),
    k_features: int = typer.Option(15, "--k-features", help="Features kept by RFE (1-30)."),
    folds: int = typer.Option(5, "--folds", help="Outer stratified CV folds."),
    repeats: int = typer.Option(5, "--repeats", help="Repeats of the outer k-fold CV."),
    tuning_iter: int = typer.Option(
        3, "--tuning-iter", help="Hyper-parameter candidates per model in the nested search."
    ),
    models: str = typer.Option(
        "",
        "--models",
        help=(
            "Comma-separated model keys (random_forest, extra_trees, adaboost, "
            "gradient_boosting, hist_gradient_boosting, bagging, soft_voting, stacking, "
            "logistic_regression). Default: all."
        ),
    ),
    seed: int = typer.Option(42, "--seed", help="Seed: same seed, same results."),
    workers: int = typer.Option(
        0, "--workers", help="Cap on Ray CPUs (0 = all cores; RAY_ADDRESS selects a cluster)."
    ),
    target_sensitivity: float = typer.Option(
        0.98, "--target-sensitivity", help="Sensitivity the clinical threshold must reach."
    ),
    registry: str | None = typer.Option(
        None,
        "--registry",
        envvar="ASSAY_REGISTRY",
        help=(
            "Registry root: file:///path, a folder, or s3://bucket/prefix (MINIO_ENDPOINT, "
            "MINIO_ACCESS_KEY, MINIO_SECRET_KEY, MINIO_SECURE). Default: ./.assay/registry "
            "locally, s3://assay-models/registry with --runner kfp."
        ),
    ),
    model_name: str = typer.Option(
        "wdbc-classifier", "--model-name", help="Name of the model in the registry."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder for metrics, report and plots (default runs/<timestamp>)."
    ),
    runner: Runner = typer.Option(
        Runner.local,
        "--runner",
        help="'local': kfp.local on this machine; 'kfp': submit to a Kubeflow Pipelines --host.",
    ),
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
    deploy: bool = typer.Option(
        False,
        "--deploy/--no-deploy",
        help="--runner kfp only: after registering, roll the InferenceService to the new version.",
    ),
    canary_percent: int = typer.Option(
        10, "--canary-percent", help="With --deploy: traffic share for the new version (1-100)."
    ),
) -> None:
    """Train the diagnostic classifier by running the training pipeline.

    Steps: validate data, VIF table, 8 ensembles + a baseline under repeated stratified CV with
    nested tuning on Ray, clinical threshold, report, registration of a new model version.
    Locally the pipeline runs through kfp.local; --runner kfp sends it to Kubeflow.
    """
    params = TrainingParams(
        data=data or "",
        target=target,
        impute=impute.value,
        k_features=k_features,
        folds=folds,
        repeats=repeats,
        tuning_iter=tuning_iter,
        seed=seed,
        models=models,
        workers=workers,
        target_sensitivity=target_sensitivity,
        registry=registry or "",
        model_name=model_name,
        deploy=deploy,
        canary_percent=canary_percent,
    )
    params = checked_params(params, local=runner is Runner.local)
    if runner is Runner.kfp:
        _submit(params, host, experiment, run_name, namespace)
    else:
        _run_local(params, out)


def checked_params(params: TrainingParams, *, local: bool) -> TrainingParams:
    """Fail in this process, with one sentence, before any pipeline step starts.

    For a local run also resolve the data path and the registry root to absolute locations,
    since the pipeline's steps run in other processes.
    """
    from assay.errors import UsageError
    from assay.registry import open_registry
    from assay.workflow.steps import TrainOptions, impute_mode, train_config

    train_config(**{name: getattr(params, name) for name in TrainOptions.__required_keys__})
    if not local:
        return _cluster_registry(params)
    if params.deploy:
        raise UsageError("--deploy needs a cluster: use it with --runner kfp --host URL.")
    data = params.data
    if data and not data.startswith("s3://"):
        from assay.data.wdbc import load_dataset

        path = Path(data).expanduser().absolute()
        load_dataset(path, target=params.target, impute=impute_mode(params.impute))
        data = str(path)
    registry = open_registry(params.registry or None).root
    return dataclasses.replace(params, data=data, registry=registry)


def _cluster_registry(params: TrainingParams) -> TrainingParams:
    """A Kubeflow run registers into MinIO; a local folder is not reachable from the cluster."""
    from assay.errors import UsageError
    from assay.registry import parse_registry_uri
    from assay.workflow.training import CLUSTER_REGISTRY

    if not params.registry:
        return dataclasses.replace(params, registry=CLUSTER_REGISTRY)
    if parse_registry_uri(params.registry).scheme != "s3":
        raise UsageError(
            f"Registry {params.registry} is a local folder the cluster cannot reach; "
            "pass --registry s3://bucket/prefix with --runner kfp (is ASSAY_REGISTRY set?)."
        )
    return params


def _run_local(params: TrainingParams, out: Path | None) -> None:
    from assay.workflow.training import PIPELINE_NAME, default_run_dir, run_training_locally
    from pipelines import get_pipeline

    run_dir = (out or default_run_dir()).absolute()
    err_console.print(f"Running pipeline [bold]assay-training[/] with kfp.local into {run_dir}")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        steps = _StepProgress(progress, params, run_dir)
        try:
            result = run_training_locally(
                get_pipeline(PIPELINE_NAME), params, run_dir, on_task=steps.on_task
            )
        finally:
            steps.stop()
    _print_result(result)


class _StepProgress:
    """One progress line per pipeline step; the training step counts its CV units as the
    component appends them to cv/units.jsonl (polled from this process)."""

    def __init__(self, progress: Progress, params: TrainingParams, run_dir: Path) -> None:
        self._progress = progress
        self._params = params
        self._run_dir = run_dir
        self._bars: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def on_task(self, event: str, name: str) -> None:
        title = STEP_TITLES.get(name, name)
        if event == "start":
            total = self._units() if name == "train-models" else 1
            self._totals[name] = total
            self._bars[name] = self._progress.add_task(title, total=total)
            if name == "train-models":
                self._start_polling(self._bars[name])
        elif name in self._bars:
            if name == "train-models":
                self.stop()
            bar = self._bars[name]
            self._progress.update(bar, completed=self._totals[name], description=f"[green]{title}")

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def _units(self) -> int:
        from assay.workflow.training import expected_cv_units

        return expected_cv_units(self._params)

    def _start_polling(self, bar: TaskID) -> None:
        from assay.workflow.training import finished_cv_units

        def poll() -> None:
            total = self._totals["train-models"]
            while not self._stop.wait(1.0):
                done = min(finished_cv_units(self._run_dir), total)
                self._progress.update(bar, completed=done)

        self._poller = threading.Thread(target=poll, name="cv-progress", daemon=True)
        self._poller.start()


def _print_result(result: Any) -> None:
    metrics_file = result.run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    scalars = metrics.get("scalar_metrics", {})
    console.print(f"[bold]Selected model:[/] {metrics.get('selected_model')}")
    if "roc_auc_mean" in scalars:
        console.print(
            f"  ROC-AUC {scalars['roc_auc_mean']:.4f} "
            f"(95% CI {scalars.get('roc_auc_ci_low', float('nan')):.4f}-"
            f"{scalars.get('roc_auc_ci_high', float('nan')):.4f})"
        )
    threshold = metrics.get("clinical_threshold", {})
    if threshold:
        console.print(
            f"  clinical threshold {threshold.get('threshold', float('nan')):.4f}: sensitivity "
            f"{threshold.get('sensitivity', float('nan')):.4f}, specificity "
            f"{threshold.get('specificity', float('nan')):.4f}"
        )
    console.print(f"[bold]Run folder:[/] {result.run_dir}")
    for name in ("metrics.json", "report.html", "model"):
        if name in result.files:
            console.print(f"  {name:<13}{result.files[name]}")
    console.print(f"  {'pipeline log':<13}{result.run_dir / 'pipeline.log'}")
    if result.version:
        console.print(f"[bold]Registered:[/] {result.version}  {result.model_uri}")


def _submit(
    params: TrainingParams,
    host: str | None,
    experiment: str,
    run_name: str | None,
    namespace: str | None,
) -> None:
    from assay.errors import UsageError
    from assay.workflow.training import PIPELINE_NAME, submit_training
    from pipelines import get_pipeline

    if not host:
        raise UsageError(
            "--runner kfp needs --host URL (or KFP_HOST) of the Kubeflow Pipelines API."
        )
    submitted = submit_training(
        get_pipeline(PIPELINE_NAME),
        params,
        host=host,
        experiment=experiment,
        run_name=run_name,
        namespace=namespace,
    )
    console.print(f"Submitted run {submitted['run_id']} to experiment {submitted['experiment']}")
    console.print(submitted["url"])
