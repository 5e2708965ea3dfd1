"""`assay compile`: write the IR YAML of every pipeline and check that each loads back."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from assay.commands._common import setting, settings_from, user_errors
from assay.config import Settings
from assay.workflow.remote import compile_pipelines as compile_all
from assay.workflow.remote import load_compiled

console = Console()


@user_errors
def compile_pipelines(
    out: Path = typer.Option(
        Path("build/pipelines"), "--out", help="Folder for <pipeline>.yaml files."
    ),
    pipeline: list[str] | None = typer.Option(
        None, "--pipeline", "-p", help="Compile only this pipeline (repeatable). Default: all."
    ),
    image: str = setting(Settings, "image"),
) -> None:
    """Compile every pipeline to KFP IR YAML for Kubeflow.

    Each written file is loaded back with the kfp SDK to prove it is valid.
    """
    from assay_pipelines import PIPELINES, get_pipeline

    step_image = settings_from(Settings, {"image": image}).image
    selected = {name: get_pipeline(name) for name in pipeline or sorted(PIPELINES)}
    written = compile_all(out, selected, image=step_image)
    table = Table(title=f"Compiled pipelines in {out}")
    for column in ("pipeline", "file", "tasks", "parameters"):
        table.add_column(column)
    for name, path in written.items():
        loaded = load_compiled(path)
        tasks = len(loaded.pipeline_spec.root.dag.tasks)
        table.add_row(name, path.name, str(tasks), ", ".join(loaded.component_spec.inputs or {}))
    console.print(table)
