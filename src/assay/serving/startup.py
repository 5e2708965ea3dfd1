"""How a server process starts: JSON logs, a frozen start-up heap, KServe's ModelServer."""

from __future__ import annotations

import argparse
import gc
from typing import Any

from kserve import ModelServer
from kserve.model_server import app
from kserve.model_server import parser as kserve_parser
from prometheus_client import disable_created_metrics

from assay.obs.logging import configure_logging
from assay.serving.http import install_http_extras
from assay.serving.settings import ServerSettings


def start_server_logging(level: str) -> None:
    """JSON logs at ``level`` and no ``*_created`` series (noise for the alert rules)."""
    configure_logging(level=level, json=True)
    disable_created_metrics()


def freeze_startup_heap() -> None:
    """Move the ~250k objects of the imports and the model out of the garbage collector's reach.

    A full collection over them takes 0.1-0.4 s, a pause every request in flight would feel
    (p99); they live as long as the process anyway.
    """
    gc.collect()
    gc.freeze()


def serve_model(
    model: Any,
    settings: ServerSettings,
    *,
    logger_name: str,
    workers: int = 1,
    registered_models: Any = None,
) -> None:
    """Install the HTTP extras on KServe's app, then serve ``model`` until SIGTERM (blocks)."""
    install_http_extras(app, model.metrics, logger_name)
    server = ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        workers=workers,
        enable_grpc=settings.enable_grpc,
        enable_latency_logging=False,
        registered_models=registered_models,
    )
    server.start([model])


def kserve_arguments() -> argparse.ArgumentParser:
    """KServe's own server arguments (``--max_threads``...), the base of each server's parser."""
    return kserve_parser
