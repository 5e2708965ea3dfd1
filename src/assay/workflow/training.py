"""`assay train` end to end: the training pipeline's arguments, a local run, the run folder.

Run folder layout (``--out``, default ``runs/<UTC timestamp>/``)::

    metrics.json  report.html  *.png      from the evaluate step (evaluation artifact)
    summary.md                            the Markdown card shown on the KFP dashboard
    vif.csv                               from the VIF step
    dataset.csv                           the validated data the steps saw
    model/{model.joblib, model-card.json} the exported model (as registered)
    run.json                              arguments, registered version + URI, file list
    pipeline.log                          every task's log
    kfp/<pipeline>-<timestamp>/<task>/... kfp.local's raw outputs (pipeline_root)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.workflow.errors import PipelineRunError
from assay.workflow.local import KFP_DIR

PIPELINE_NAME = "training"
CLUSTER_REGISTRY = "s3://assay-models/registry"  # the pipeline's default (docs/design.md)

# task name in kfp.local's output folder -> (output name, destination in the run folder);
# an empty destination copies the output folder's content into the run folder itself.
COLLECTED_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("evaluate-models", "evaluation", ""),
    ("evaluate-models", "summary", "summary.md"),
    ("compute-vif", "vif_table/vif.csv", "vif.csv"),
    ("load-data", "dataset", "dataset.csv"),
    ("train-models", "model", "model"),
)


@dataclass
class TrainingParams:
    """The training pipeline's parameters, one field per pipeline parameter."""

    data: str = ""
    target: str = "diagnosis"
    impute: str = "none"
    k_features: int = 15
    folds: int = 5
    repeats: int = 5
    tuning_iter: int = 3
    seed: int = 42
    models: str = ""
    workers: int = 0
    target_sensitivity: float = 0.98
    registry: str = CLUSTER_REGISTRY
    model_name: str = "wdbc-classifier"
    deploy: bool = False
    canary_percent: int = 10

    def arguments(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingRun:
    run_dir: Path
    version: str | None
    model_uri: str | None
    files: dict[str, str] = field(default_factory=dict)


def default_run_dir(base: Path = Path("runs")) -> Path:
    return base / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def run_training_locally(
    pipeline: Any,
    params: TrainingParams,
    run_dir: Path,
    on_task: Callable[[str, str], None] | None = None,
) -> TrainingRun:
    """Run ``pipeline`` (the training @dsl.pipeline object) through kfp.local and gather its
    outputs in ``run_dir``."""
    from assay.workflow.local import run_locally, task_parameters, write_run_record

    if params.deploy:
        raise PipelineRunError(
            "deploy=True needs a Kubernetes cluster; use --runner kfp --host URL to deploy."
        )
    started = datetime.now(UTC)
    record: dict[str, Any] = {
        "pipeline": PIPELINE_NAME,
        "runner": "kfp.local (SubprocessRunner)",
        "arguments": params.arguments(),
        "started_at": started.isoformat(),
        "status": "running",
    }
    run_dir = run_dir.absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(run_dir, record)
    try:
        run = run_locally(pipeline, params.arguments(), run_dir, on_task=on_task)
    except PipelineRunError as exc:
        record.update(status="failed", error=str(exc))
        write_run_record(run_dir, record)
        raise
    except KeyboardInterrupt:
        record.update(status="interrupted")
        write_run_record(run_dir, record)
        raise
    files = collect_outputs(run.kfp_run_dir, run_dir)
    registered = task_parameters(run.task_dir("register-model"))
    result = TrainingRun(
        run_dir=run_dir,
        version=registered.get("version"),
        model_uri=registered.get("model_uri"),
        files=files,
    )
    record.update(
        status="succeeded",
        finished_at=datetime.now(UTC).isoformat(),
        kfp_run_dir=str(run.kfp_run_dir),
        registered={"version": result.version, "model_uri": result.model_uri},
        files=files,
    )
    write_run_record(run_dir, record)
    return result


def collect_outputs(kfp_run_dir: Path, run_dir: Path) -> dict[str, str]:
    """Copy the interesting task outputs to the top of the run folder; return name -> path."""
    from assay.workflow.local import copy_output

    files: dict[str, str] = {}
    for task, output, destination in COLLECTED_OUTPUTS:
        source = kfp_run_dir / task / output
        if destination:
            copied = copy_output(source, run_dir / destination)
            if copied is not None:
                files[destination] = str(copied)
        elif source.is_dir():
            for item in sorted(source.iterdir()):
                copy_output(item, run_dir / item.name)
                files[item.name] = str(run_dir / item.name)
    if "metrics.json" not in files:
        raise PipelineRunError(f"The evaluate step left no metrics.json under {kfp_run_dir}.")
    return files


def expected_cv_units(params: TrainingParams) -> int:
    """Work units the CV writes to ``cv/units.jsonl``: one per model x outer split, plus one
    per model for the single 80/20 split."""
    from assay.classify.models import ALL_KEYS

    keys = [m for m in params.models.split(",") if m.strip()] or ALL_KEYS
    return len(keys) * (params.folds * params.repeats + 1)


def finished_cv_units(run_dir: Path) -> int:
    """Lines the running train step has appended to its ``cv/units.jsonl`` so far."""
    from assay.classify.tables import UNITS_JSONL

    found = sorted(run_dir.glob(f"{KFP_DIR}/*/train-models/training/cv/{UNITS_JSONL}"))
    if not found:
        return 0
    with found[-1].open("rb") as handle:
        return sum(1 for _ in handle)


def submit_training(
    pipeline: Any,
    params: TrainingParams,
    host: str,
    experiment: str,
    run_name: str | None = None,
    **client: Any,
) -> Mapping[str, str]:
    """Send ``pipeline`` (the training @dsl.pipeline object) to a Kubeflow Pipelines endpoint
    (see assay.workflow.remote)."""
    from assay.workflow.remote import submit_pipeline

    return submit_pipeline(
        pipeline,
        params.arguments(),
        name=PIPELINE_NAME,
        host=host,
        experiment=experiment,
        run_name=run_name,
        **client,
    )
