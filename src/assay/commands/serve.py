"""`assay serve <server>`: run a KServe model server on this machine.

Each server is one sub-command of this typer app (``app.command("bias-scorer")(...)`` adds one).
"""

from __future__ import annotations

import sys

import typer

from assay.commands import _serve_options as serve_options
from assay.commands import serve_bias
from assay.commands._common import user_errors

app = typer.Typer(
    name="serve",
    help="Run a model server (v2 inference protocol over REST and gRPC, /metrics).",
    no_args_is_help=True,
)

MODEL_HELP = (
    "A registry model URI <root>/<name>/<version|alias> (file:// or s3://), or a version "
    "folder with model.joblib + model-card.json. Default: <ASSAY_REGISTRY>/wdbc-classifier/"
    "production, or .../latest when no production alias exists."
)


@app.command("classifier")
@user_errors
def classifier(
    model: str | None = typer.Option(None, "--model", envvar="ASSAY_MODEL_URI", help=MODEL_HELP),
    name: str = serve_options.model_name_option("wdbc-classifier"),
    http_port: int = serve_options.HTTP_PORT,
    grpc_port: int = serve_options.GRPC_PORT,
    no_grpc: bool = serve_options.NO_GRPC,
    workers: int = typer.Option(
        1, "--workers", min=1, help="REST worker processes (metrics and reload are per process)."
    ),
    max_batch_rows: int = typer.Option(
        1024, "--max-batch-rows", min=1, help="Largest request batch; also the batching cap."
    ),
    max_batch_wait_ms: float = typer.Option(
        0.0, "--max-batch-wait-ms", min=0.0, help="Extra wait to gather concurrent requests."
    ),
    compile: bool = typer.Option(
        True, "--compile/--no-compile", help="ONNX Runtime where it matches scikit-learn."
    ),
    reload_interval: float = typer.Option(
        0.0, "--reload-interval", min=0.0, help="Seconds between checks for a new version (0 off)."
    ),
    log_level: str = serve_options.LOG_LEVEL,
    log_sample_rate: float = serve_options.LOG_SAMPLE_RATE,
) -> None:
    """Serve the WDBC classifier; reload with POST /v2/repository/models/NAME/load or SIGHUP."""
    # KServe parses sys.argv when imported; keep assay's options away from it.
    sys.argv = sys.argv[:1]
    from serving.classifier import ServerOptions, run_server

    run_server(
        ServerOptions(
            model_uri=model or default_model_uri(),
            name=name,
            http_port=http_port,
            grpc_port=grpc_port,
            workers=workers,
            max_batch_rows=max_batch_rows,
            max_batch_wait_ms=max_batch_wait_ms,
            compile=compile,
            reload_interval_s=reload_interval,
            log_level=log_level,
            log_sample_rate=log_sample_rate,
            enable_grpc=not no_grpc,
        )
    )


def default_model_uri(name: str = "wdbc-classifier") -> str:
    """``<registry>/<name>/production`` if that alias exists, else ``.../latest``."""
    from assay.registry import PRODUCTION, open_registry

    registry = open_registry()
    alias = PRODUCTION if PRODUCTION in registry.aliases(name) else "latest"
    return f"{registry.root.rstrip('/')}/{name}/{alias}"


app.command("bias-scorer")(serve_bias.bias_scorer)
