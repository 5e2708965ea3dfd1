"""HTTP extras on KServe's FastAPI app: ``/health``, JSON error bodies for client errors, a
default JSON content type, a request-size limit, the admin guard of the repository endpoints,
and quiet per-request loggers."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.model_repository import ModelRepository

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics
from assay.serving.body_budget import JsonBudget
from assay.serving.fast_infer import BINARY_HEADER, FastInfer, replay
from assay.serving.repository import RepositoryDenied, admin_request
from assay.serving.tensors import BadRequest, whole_number

REPOSITORY_PATH = "/v2/repository/"
BUSY_RETRY_AFTER_S = 2
BODY_READ = "assay.body_read"
"""Scope key: the request's body was read whole and checked by a :class:`RequestSizeLimit`."""


def install_http_extras(
    app: Any,
    metrics: ServingMetrics,
    logger_name: str,
    *,
    max_request_bytes: int,
    admin_token: str | None,
    fast_infer: ModelRepository | None = None,
    max_buffered_bytes: int | None = None,
    budget: JsonBudget | None = None,
) -> None:
    """Add ``/health``, 4xx JSON handlers for client errors, the request-size limit (with the
    cap on body bytes still arriving and the JSON ``budget``), the guard of the repository
    endpoints, and quiet per-request loggers; with ``fast_infer`` (the served models), plain v2
    JSON inference requests take :class:`FastInfer`'s lean route.

    Must run before the server starts (KServe's ``ModelServer.start``).
    """
    log = get_logger(logger_name)

    if not any(getattr(route, "path", None) == "/health" for route in app.routes):

        async def health() -> dict[str, str]:
            return {"status": "alive"}

        app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)

    async def bad_request(_request: Any, exc: Exception) -> Any:
        reason = getattr(exc, "code", "invalid_input")
        metrics.count_error(reason)
        log.info("request_rejected", reason=reason, error=str(exc))
        return JSONResponse(status_code=getattr(exc, "status", 400), content={"error": str(exc)})

    async def repository_denied(_request: Any, exc: Exception) -> Any:
        return JSONResponse(status_code=403, content={"error": str(exc)})

    async def invalid_body(_request: Any, exc: Exception) -> Any:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        if any(error.get("type") == "json_invalid" for error in errors):
            metrics.count_error("malformed_json")
            detail = errors[0].get("ctx", {}).get("error", "") if errors else ""
            return JSONResponse(
                status_code=400, content={"error": f"malformed JSON in request body: {detail}"}
            )
        metrics.count_error("malformed_request")
        problems = "; ".join(_describe(error) for error in _schema_errors(errors)[:5])
        return JSONResponse(
            status_code=422,
            content={"error": f"request body is not a valid v2 inference request: {problems}"},
        )

    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(RepositoryDenied, repository_denied)
    app.add_middleware(DefaultJsonContentType)
    app.add_middleware(RepositoryGuard, admin_token=admin_token)
    buffer = BodyBuffer(max_buffered_bytes) if max_buffered_bytes is not None else None
    limits: dict[str, Any] = {"max_bytes": max_request_bytes, "buffer": buffer, "budget": budget}
    app.add_middleware(RequestSizeLimit, metrics=metrics, log=log, **limits)
    for noisy in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if fast_infer is not None:
        install_outermost(
            app,
            partial(
                FastInfer,
                repository=fast_infer,
                handlers=app.exception_handlers,
                limit=partial(RequestSizeLimit, metrics=metrics, log=log, **limits),
            ),
        )


def install_outermost(app: Any, layer: Any) -> None:
    """Wrap ``layer`` around the app's whole middleware stack (built at the first request), so
    it runs before KServe's own timing middleware, which is added when the server starts."""
    build = app.build_middleware_stack

    def build_with_layer() -> Any:
        return layer(build())

    app.build_middleware_stack = build_with_layer


def _describe(error: dict[str, Any]) -> str:
    parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "InferenceRequest")]
    return f"{'.'.join(parts) or 'body'}: {error.get('msg', 'invalid')}"


def _schema_errors(errors: Sequence[Any]) -> Sequence[Any]:
    """Drop the noise of KServe's ``InferenceRequest | bytes`` body union (the bytes branch)."""
    relevant = [error for error in errors if "bytes" not in error.get("loc", ())]
    return relevant or errors


class DefaultJsonContentType:
    """Treat an inference POST without a JSON content type (``curl -d``) as JSON.

    KServe reads such a body as the binary tensor extension and answers with a message about a
    missing ``inference-header-content-length`` header; a binary request keeps that header.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            path = scope.get("path", "")
            if path.endswith("/infer") or path.endswith(":predict"):
                headers = dict(scope.get("headers") or [])
                content_type = headers.get(b"content-type", b"")
                binary = b"inference-header-content-length" in headers
                if not binary and b"json" not in content_type:
                    headers[b"content-type"] = b"application/json"
                    scope = {**scope, "headers": list(headers.items())}
        await self.app(scope, receive, send)


async def send_json(send: Any, status: int, content: dict[str, Any], **headers: str) -> None:
    """A whole JSON response from an ASGI middleware."""
    body = json.dumps(content).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RepositoryGuard:
    """Let only the admin reach ``/v2/repository/...`` (see :mod:`assay.serving.repository`).

    No token configured: 403. No ``Authorization: Bearer`` header: 401. A wrong token: 403.
    The admin's request is marked (``admin_request``) for the repository extension.
    """

    def __init__(self, app: Any, admin_token: str | None) -> None:
        self.app = app
        self.token = admin_token.encode() if admin_token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(REPOSITORY_PATH):
            await self.app(scope, receive, send)
            return
        if self.token is None:
            message = "the repository endpoints are disabled: start the server with "
            message += "--admin-token-file to enable them (SIGHUP also reloads the model)"
            await send_json(send, 403, {"error": message})
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, presented = given.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            error = {"error": "this endpoint needs the admin token: Authorization: Bearer <token>"}
            await send_json(send, 401, error, **{"www-authenticate": "Bearer"})
            return
        if not hmac.compare_digest(presented.strip(), self.token):
            await send_json(send, 403, {"error": "wrong admin token"})
            return
        marked = admin_request.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            admin_request.reset(marked)


class BodyBuffer:
    """Request body bytes held, across connections, while their senders are still sending."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0

    def reserve(self, size: int) -> bool:
        if self.held + size > self.capacity:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


class RequestSizeLimit:
    """413 for a request body over ``max_bytes``: by its ``Content-Length`` before reading it,
    else while it streams in; the body is read whole (at most ``max_bytes``) before parsing.

    ``buffer``: the bytes of bodies still arriving count against one cap for all connections
    (503 with Retry-After beyond it), so slow senders cannot fill the memory. ``budget``: a JSON
    body (or a binary request's JSON header) is checked against it before anything parses it.
    """

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        metrics: ServingMetrics,
        log: Any,
        buffer: BodyBuffer | None = None,
        budget: JsonBudget | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.log = log
        self.buffer = buffer
        self.budget = budget

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        if scope.get(BODY_READ):  # an outer limit (the lean route's) read and checked it
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (
            (length := whole_number(declared)) is None or length > self.max_bytes
        ):
            await self._refuse(send, f"a Content-Length of {declared.decode(errors='replace')}")
            return
        body = await self._read(receive, send)
        if body is None:
            return
        if self.budget is not None:
            try:
                self.budget.check(json_part(body, headers))
            except BadRequest as exc:
                await self._answer(send, exc)
                return
        scope[BODY_READ] = True
        await self.app(scope, replay(body, receive), send)

    async def _read(self, receive: Any, send: Any) -> bytes | None:
        """The whole body, or None when it was refused (answered here) or the client left."""
        chunks: list[bytes] = []
        total = held = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None  # the client went away
                chunk, more = message.get("body", b""), message.get("more_body", False)
                total += len(chunk)
                if total > self.max_bytes:
                    await _drain(receive, more=more, limit=self.max_bytes)
                    await self._refuse(send, f"over {self.max_bytes} bytes streamed")
                    return None
                chunks.append(chunk)
                if not more:
                    return b"".join(chunks)
                if self.buffer is not None:  # held while the client is still sending
                    if not self.buffer.reserve(total - held):
                        await self._busy(send)
                        return None
                    held = total
        finally:
            if self.buffer is not None:
                self.buffer.release(held)

    async def _refuse(self, send: Any, seen: str) -> None:
        error = BadRequest(
            f"request body too large ({seen}): this server takes at most {self.max_bytes} "
            "bytes (--max-request-bytes); split the batch into smaller requests",
            "request_too_large",
            status=413,
        )
        await self._answer(send, error, connection="close")

    async def _busy(self, send: Any) -> None:
        capacity = self.buffer.capacity if self.buffer is not None else 0
        error = BadRequest(
            f"the server is holding its limit of {capacity} bytes of request bodies still "
            f"arriving (--max-buffered-bytes); retry after {BUSY_RETRY_AFTER_S} s",
            "bodies_buffer_full",
            status=503,
        )
        retry = str(BUSY_RETRY_AFTER_S)
        await self._answer(send, error, connection="close", **{"retry-after": retry})

    async def _answer(self, send: Any, error: BadRequest, **headers: str) -> None:
        self.metrics.count_error(error.code)
        self.log.info("request_rejected", reason=error.code, error=str(error))
        await send_json(send, error.status, {"error": str(error)}, **headers)


def json_part(body: bytes, headers: dict[bytes, bytes]) -> bytes:
    """The JSON of a request: the whole body, or a binary-extension body's JSON header."""
    declared = headers.get(BINARY_HEADER)
    if declared is None:
        return body
    length = whole_number(declared)
    return body[:length] if length is not None else b""  # the data plane refuses the header


async def _drain(receive: Any, *, more: bool, limit: int) -> None:
    """Read and drop up to ``limit`` more body bytes before answering, so a client still sending
    its body reads the 413 instead of a connection reset (uvicorn stops delivering the body once
    the response is sent); a longer body is cut off by closing."""
    dropped = 0
    while more and dropped <= limit:
        message = await receive()
        dropped += len(message.get("body", b""))
        more = message["type"] == "http.request" and message.get("more_body", False)
