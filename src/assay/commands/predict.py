"""`assay predict`: send a CSV of WDBC rows to a v2 inference endpoint and print predictions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from assay.commands._common import user_errors

if TYPE_CHECKING:
    import pandas as pd


@user_errors
def predict(
    file: str = typer.Argument(
        ..., help="CSV with the 30 WDBC feature columns (header = feature names), or - for stdin."
    ),
    url: str = typer.Option(
        ...,
        "--url",
        envvar="ASSAY_PREDICT_URL",
        help="Base URL of the server or InferenceService, e.g. http://127.0.0.1:8080.",
    ),
    model: str = typer.Option("wdbc-classifier", "--model", help="Model name on the server."),
    output: str = typer.Option("table", "--format", help="table (rich) or csv (to stdout)."),
    batch_rows: int = typer.Option(256, "--batch-rows", min=1, help="Rows per request."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
) -> None:
    """Predict malignant/benign for every row of FILE with the served classifier (v2 protocol)."""
    import pandas as pd

    from assay.client import ClassifierClient, feature_matrix
    from assay.errors import DataValidationError, UsageError

    if output not in ("table", "csv"):
        raise UsageError(f"--format {output!r}: use table or csv.")
    try:
        frame = pd.read_csv(sys.stdin if file == "-" else file)
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"cannot read {file!r} as CSV: {exc}") from exc
    with ClassifierClient(url, model, timeout_s=timeout) as client:
        result = client.predict(feature_matrix(frame), batch_rows=batch_rows)
    table = result.frame()
    table.insert(0, "row", range(len(table)))
    if output == "csv":
        table.to_csv(sys.stdout, index=False, float_format="%.6f")
        return
    _print_table(table, model, result.model_version)


def _print_table(table: pd.DataFrame, model: str, version: str) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"{model} {version}")
    for column in ("row", "prediction", "probability", "confidence"):
        view.add_column(column, justify="left" if column == "prediction" else "right")
    for row in table.itertuples(index=False):
        view.add_row(
            str(row.row), row.prediction, f"{row.probability:.4f}", f"{row.confidence:.4f}"
        )
    Console().print(view)
