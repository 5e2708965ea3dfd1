"""HTTP extras on KServe's FastAPI app: ``/health``, JSON error bodies for client errors, a
default JSON content type, and quiet per-request loggers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import ServingMetrics
from assay.serving.tensors import BadRequest


def install_http_extras(app: Any, metrics: ServingMetrics, logger_name: str) -> None:
    """Add ``/health``, 4xx JSON handlers for client errors, and quiet per-request loggers.

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
        return JSONResponse(status_code=400, content={"error": str(exc)})

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
    app.add_middleware(DefaultJsonContentType)
    for noisy in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
