"""`assay train`'s run of the training pipeline: its checked settings, what a local run keeps,
how far the CV is.

A local run folder (``--out``, default ``runs/<UTC timestamp>/``) holds, besides run.json,
pipeline.log and kfp/ (see assay.workflow.local)::

    metrics.json  report.html  *.png      from the evaluate step (evaluation artifact)
    summary.md                            the Markdown card shown on the KFP dashboard
    vif.csv                               from the VIF step
    dataset.csv                           the validated data the steps saw
    model/{model.joblib, model-card.json} the exported model (as registered)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.classify.config import CLUSTER_REGISTRY, TrainingSettings
from assay.classify.tables import UNITS_JSONL
from assay.commands._docker import input_mounts, ray_cpus, registry_mount
from assay.data.wdbc import load_dataset
from assay.errors import UsageError
from assay.registry import open_registry, parse_registry_uri
from assay.tested_versions import require_tested
from assay.workflow.containers import Mount, container_run
from assay.workflow.errors import PipelineRunError
from assay.workflow.kfp_local import KFP_DIR, TaskListener
from assay.workflow.local import LocalJob, LocalRun, run_locally
from assay.workflow.progress import UnitCounter
from assay.workflow.run_folder import TaskOutput, task_parameters
from assay.workflow.run_folder import collect_outputs as collect_task_outputs

PIPELINE_NAME = "training"
TRAIN_TASK = "train-models"
REGISTER_TASK = "register-model"
STEP_TITLES = {
    "load-data": "Load + validate data",
    "compute-vif": "VIF table",
    TRAIN_TASK: "Train with CV (Ray)",
    "evaluate-models": "Evaluate + report",
    REGISTER_TASK: "Register model",
}
OUTPUTS = (
    TaskOutput("evaluate-models", "evaluation"),
    TaskOutput("evaluate-models", "summary", "summary.md"),
    TaskOutput("compute-vif", "vif_table/vif.csv", "vif.csv"),
    TaskOutput("load-data", "dataset", "dataset.csv"),
    TaskOutput(TRAIN_TASK, "model", "model"),
)
REQUIRED = ("metrics.json",)


def checked_settings(settings: TrainingSettings, *, local: bool) -> TrainingSettings:
    """Fail in this process, with one sentence, before any pipeline step starts.

    For a local run also resolve the data path and the registry root to absolute locations,
    since the pipeline's steps run in other processes.
    """
    settings.train_config()
    if not local:
        return _cluster_registry(settings)
    if settings.deploy:
        raise UsageError("--deploy needs a cluster: use it with --runner kfp --host URL.")
    data = settings.data
    if data and not data.startswith("s3://"):
        path = Path(data).expanduser().absolute()
        load_dataset(path, target=settings.target, impute=settings.impute)
        data = str(path)
    given = settings.registry if "registry" in settings.model_fields_set else None
    registry = open_registry(given or None).root
    return settings.model_copy(update={"data": data, "registry": registry})


def _cluster_registry(settings: TrainingSettings) -> TrainingSettings:
    """A Kubeflow run registers into MinIO; a local folder is not reachable from the cluster."""
    if "registry" not in settings.model_fields_set:
        return settings.model_copy(update={"registry": CLUSTER_REGISTRY})
    if parse_registry_uri(settings.registry).scheme != "s3":
        raise UsageError(
            f"Registry {settings.registry} is a local folder the cluster cannot reach; "
            "pass --registry s3://bucket/prefix with --runner kfp (is ASSAY_REGISTRY set?)."
        )
    return settings


def training_job(pipeline: Any, settings: TrainingSettings) -> LocalJob:
    return LocalJob(
        name=PIPELINE_NAME,
        pipeline=pipeline,
        arguments=settings.arguments(),
        outputs=OUTPUTS,
        required=REQUIRED,
        summarise=lambda run: {"registered": registered(run)},
    )


def run_training_locally(
    pipeline: Any,
    settings: TrainingSettings,
    run_dir: Path,
    on_task: TaskListener | None = None,
) -> LocalRun:
    """Run ``pipeline`` (the training @dsl.pipeline object) through kfp.local into ``run_dir``."""
    if settings.deploy:
        raise PipelineRunError(
            "deploy=True needs a Kubernetes cluster; use --runner kfp --host URL to deploy."
        )
    require_tested("scikit-learn")  # the steps train and pickle with this venv's scikit-learn
    return run_locally(training_job(pipeline, settings), run_dir, on_task)


def run_training_in_containers(
    pipeline: Any,
    settings: TrainingSettings,
    run_dir: Path,
    image: str,
    on_task: TaskListener | None = None,
) -> LocalRun:
    """The same run with every step in a container of ``image`` (kfp.local's DockerRunner) and
    a Ray head container the train step joins as it joins KubeRay's (RAY_ADDRESS=ray://...)."""
    mounts = [
        Mount(run_dir, writable=True),
        *input_mounts([settings.data]),
        *registry_mount(settings.registry),
    ]
    with container_run(image, mounts, ray_cpus=ray_cpus(settings.ray_cpus)) as (_, steps):
        return run_locally(training_job(pipeline, settings), run_dir, on_task, steps)


def registered(run: LocalRun) -> dict[str, str | None]:
    """The version the register step made and its URI."""
    made = task_parameters(run.task_dir(REGISTER_TASK))
    return {"version": made.get("version"), "model_uri": made.get("model_uri")}


def collect_outputs(kfp_run_dir: Path, run_dir: Path) -> dict[str, str]:
    """Copy the training run's outputs to the top of the run folder; return name -> path."""
    return collect_task_outputs(kfp_run_dir, run_dir, OUTPUTS, REQUIRED)


def expected_cv_units(settings: TrainingSettings) -> int:
    """Work units the CV writes to ``cv/units.jsonl``."""
    return settings.train_config().unit_count()


def finished_cv_units(run_dir: Path) -> int:
    """Lines the running train step has appended to its ``cv/units.jsonl`` so far."""
    found = sorted(run_dir.glob(f"{KFP_DIR}/*/{TRAIN_TASK}/training/cv/{UNITS_JSONL}"))
    if not found:
        return 0
    with found[-1].open("rb") as handle:
        return sum(1 for _ in handle)


def cv_counter(settings: TrainingSettings, run_dir: Path) -> UnitCounter:
    return UnitCounter(expected_cv_units(settings), lambda: finished_cv_units(run_dir))
