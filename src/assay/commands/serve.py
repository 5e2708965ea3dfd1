"""`assay serve <server>`: run a KServe model server on this machine.

Each server is one sub-command of this typer app, its options generated from the server's
settings (:mod:`assay.serving.settings`), the same as ``python -m assay_serving.<server>`` takes.
"""

from __future__ import annotations

import sys

import typer

from assay.commands import serve_bias
from assay.commands._serve_options import EntryDefault, settings_command
from assay.serving.settings import ClassifierServerSettings

app = typer.Typer(
    name="serve",
    help="Run a model server (v2 inference protocol over REST and gRPC, /metrics).",
    no_args_is_help=True,
)


def default_model_uri(name: str = "wdbc-classifier") -> str:
    """``<registry>/<name>/production`` if that alias exists, else ``.../latest``."""
    from assay.registry import PRODUCTION, open_registry

    registry = open_registry()
    alias = PRODUCTION if PRODUCTION in registry.aliases(name) else "latest"
    return f"{registry.root.rstrip('/')}/{name}/{alias}"


def run_classifier(settings: ClassifierServerSettings) -> None:
    # KServe parses sys.argv when imported; keep assay's options away from it.
    sys.argv = sys.argv[:1]
    from assay.serving.classifier import run_server

    run_server(settings)


classifier = settings_command(
    ClassifierServerSettings,
    run_classifier,
    "Serve the WDBC classifier; reload with POST /v2/repository/models/NAME/load or SIGHUP.",
    entry_defaults={
        "model_uri": EntryDefault(
            default_model_uri,
            "<ASSAY_REGISTRY>/wdbc-classifier/production, or .../latest without that alias",
        )
    },
)
app.command("classifier")(classifier)
app.command("bias-scorer")(serve_bias.bias_scorer)
