"""Options every `assay serve <server>` command takes the same way (ports, gRPC switch, logs)."""

from __future__ import annotations

from typing import Any

import typer

HTTP_PORT = typer.Option(8080, "--http-port", help="REST port (also /metrics).")
GRPC_PORT = typer.Option(8081, "--grpc-port", help="gRPC port.")
NO_GRPC = typer.Option(False, "--no-grpc", help="Serve REST only.")
LOG_LEVEL = typer.Option("info", "--log-level", help="debug logs every request.")
LOG_SAMPLE_RATE = typer.Option(
    0.01, "--log-sample-rate", min=0.0, max=1.0, help="Share of requests logged at info."
)


def model_name_option(default: str) -> Any:
    """``--name``: the model name in the v2 URLs."""
    return typer.Option(default, "--name", help="Model name in the v2 URLs.")
