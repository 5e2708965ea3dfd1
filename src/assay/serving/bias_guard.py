"""What protects the bias scorer's providers and spend: admission control (429 with
Retry-After when too many passages are in progress), cancelling a request whose client is gone,
and the coarse reasons clients see for a missing rater (the details go to the server log)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi.responses import JSONResponse

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics

RETRY_AFTER_S = 5
COARSE = {"timeout": "timeout", "budget_exceeded": "budget"}
LABELS = frozenset(
    {"circuit_open", "connection", "rate_limited", "server_error", "auth", "bad_request"}
    | {"parse_error", "not_configured", "error"}
)
"""The reason labels of ``assay.llm.errors`` and the scorer that may be shown after
``unavailable``; anything else (an exception's class name, a URL's scheme) is not."""
INFER_PATHS = re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/infer|/v1/models/[^/]+:predict")


def coarse_reason(detail: str) -> str:
    """``timeout``, ``budget`` or ``unavailable (<code>)`` for a detailed missing reason; the
    code is the reason's leading label (``circuit_open``), never exception text or a URL."""
    code = detail.split(":", 1)[0].strip()
    if code in COARSE:
        return COARSE[code]
    return f"unavailable ({code})" if code in LABELS else "unavailable"


def coarse_reasons(reasons: Mapping[str, str]) -> dict[str, str]:
    return {rater: coarse_reason(why) for rater, why in reasons.items()}


class QueueFull(Exception):
    """Admitting the request would exceed ``max_queued_passages``: 429 with Retry-After (gRPC:
    RESOURCE_EXHAUSTED with retry information, :mod:`assay.serving.grpc_status`)."""

    retry_after_s = RETRY_AFTER_S


class Admission:
    """Counts the passages in progress; a request that does not fit is refused, not queued.
    A request arriving when nothing is in progress is always admitted (however many rows)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_progress = 0

    @contextlib.contextmanager
    def admit(self, passages: int) -> Iterator[None]:
        if self.in_progress and self.in_progress + passages > self.capacity:
            raise QueueFull(
                f"the scorer is busy ({self.in_progress} passages in progress, room for "
                f"{self.capacity}); retry after {RETRY_AFTER_S} s"
            )
        self.in_progress += passages
        try:
            yield
        finally:
            self.in_progress -= passages


def install_guards(app: Any, metrics: ServingMetrics, logger_name: str) -> None:
    """The 429 handler and the cancel-on-disconnect middleware; before the server starts."""
    log = get_logger(logger_name)

    async def queue_full(_request: Any, exc: Exception) -> Any:
        metrics.count_error("queue_full")
        log.info("request_refused", reason="queue_full", error=str(exc))
        return JSONResponse(
            status_code=429,
            content={"error": str(exc)},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    app.add_exception_handler(QueueFull, queue_full)
    app.add_middleware(CancelOnDisconnect, logger_name=logger_name)


class CancelOnDisconnect:
    """Pure ASGI middleware: an inference request whose client disconnects before the response
    starts is cancelled, so its provider calls stop instead of running (and costing) on."""

    def __init__(self, app: Any, logger_name: str) -> None:
        self.app = app
        self.log = get_logger(logger_name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not INFER_PATHS.fullmatch(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        await _Exchange(self.app, scope, receive, send).run(self.log)


class _Exchange:
    """One request: the app runs as a task; after the body is read, a watcher waits for the
    client's disconnect and cancels that task unless the response has already started."""

    def __init__(self, app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.gone = asyncio.Event()
        self.started = False
        self.task: asyncio.Task[None] | None = None
        self.watcher: asyncio.Task[None] | None = None

    async def run(self, log: Any) -> None:
        self.task = asyncio.create_task(self.app(self.scope, self.receive, self.send))
        try:
            await self.task
        except asyncio.CancelledError:
            if not self.gone.is_set():
                raise
            log.info("request_cancelled", reason="client_disconnected", path=self.scope["path"])
        finally:
            if self.watcher is not None:
                self.watcher.cancel()

    async def receive(self) -> dict[str, Any]:
        if self.watcher is not None:  # the body is read: only a disconnect can come now
            await self.gone.wait()
            return {"type": "http.disconnect"}
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.watcher = asyncio.create_task(self._watch())
        return message

    async def send(self, message: dict[str, Any]) -> None:
        self.started = True
        await self._send(message)

    async def _watch(self) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.started:
            self.gone.set()
            if self.task is not None:
                self.task.cancel()
