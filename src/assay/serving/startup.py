"""How a server process starts: JSON logs, a frozen start-up heap, KServe's ModelServer."""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

import uvloop
from kserve import ModelServer
from kserve.model_server import app
from kserve.model_server import args as kserve_args
from kserve.model_server import parser as kserve_parser
from prometheus_client import disable_created_metrics

from assay.obs.logging import configure_logging
from assay.serving.body_budget import JsonBudget
from assay.serving.connections import ConnectionLimits, guarded_protocol
from assay.serving.dataplane import StrictDataPlane
from assay.serving.grpc_status import install_retryable_status
from assay.serving.http import install_http_extras
from assay.serving.repository import GuardedRepositoryExtension, ServingRepository, read_admin_token
from assay.serving.settings import ServerSettings
from assay.tested_versions import require_tested


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
    budget: JsonBudget,
    workers: int = 1,
    registered_models: ServingRepository | None = None,
    fast_rest: bool = False,
) -> None:
    """Install the HTTP extras on KServe's app, then serve ``model`` until SIGTERM (blocks).

    KServe's data plane and repository extension are swapped for strict decoding, honest
    readiness and the admin guard; gRPC takes messages up to ``--max-request-bytes``; a JSON
    body over ``budget`` is refused before it is parsed; the REST connections get the head size
    limit and the head and body deadlines (:mod:`assay.serving.connections`).
    ``fast_rest``: plain v2 JSON inference requests take the lean route of
    :mod:`assay.serving.fast_infer`.
    """
    require_tested("kserve")
    repository = registered_models if registered_models is not None else ServingRepository()
    install_http_extras(
        app,
        model.metrics,
        logger_name,
        max_request_bytes=settings.max_request_bytes,
        admin_token=read_admin_token(settings.admin_token_file),
        fast_infer=repository if fast_rest else None,
        max_buffered_bytes=settings.max_buffered_bytes,
        budget=budget,
    )
    kserve_args.grpc_max_receive_message_length = settings.max_request_bytes
    install_retryable_status()
    server = GuardedModelServer(
        connection_limits(settings),
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        workers=workers,
        enable_grpc=settings.enable_grpc,
        enable_latency_logging=False,
        registered_models=repository,
    )
    server.dataplane = StrictDataPlane(model_registry=repository, max_values=budget.max_values)
    server.model_repository_extension = GuardedRepositoryExtension(repository)
    if fast_rest:  # KServe's own --event-loop choice never reaches its asyncio.run
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.set_event_loop(uvloop.new_event_loop())  # KServe asks for a current loop first
    server.start([model])


def connection_limits(settings: ServerSettings) -> ConnectionLimits:
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
    )


class GuardedModelServer(ModelServer):
    """KServe's server whose uvicorn connections enforce ``limits``.

    KServe builds its uvicorn ``Config`` inside ``start``, just before it sets up the event
    loop; the protocol class is set there, before uvicorn loads the config."""

    def __init__(self, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection_limits = limits

    def setup_event_loop(self) -> None:
        protocol = guarded_protocol(self.connection_limits)
        rest = self._rest_server or getattr(self._rest_multiprocess_server, "_rest_server", None)
        if rest is not None:
            rest.config.http = protocol
        super().setup_event_loop()


def kserve_arguments() -> argparse.ArgumentParser:
    """KServe's own server arguments (``--max_threads``...), the base of each server's parser."""
    return kserve_parser
