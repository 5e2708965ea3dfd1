"""The bias scorer's caller checks over REST: an inference request without a valid key is
answered 401/403 before its body is read, and a caller over one of its own limits gets 429 with
Retry-After and a body naming the limit. Health, readiness, metadata and ``/metrics`` stay open
(the probes and Prometheus carry no key). gRPC gets the same answers from the model itself (the
exceptions are gRPC status exceptions)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from assay.obs.logging import get_logger
from assay.obs.metrics_serving import BiasScorerMetrics
from assay.serving.bias_callers import (
    UNAUTHENTICATED,
    CallerForbidden,
    CallerKeys,
    CallerUnauthenticated,
)
from assay.serving.bias_guard import INFER_PATHS
from assay.serving.bias_quota import CallerOverQuota
from assay.serving.http import send_json


def install_caller_guards(
    app: Any, keys: CallerKeys, metrics: BiasScorerMetrics, logger_name: str
) -> None:
    """The 401/403/429 handlers and the key check in front of the inference routes."""
    log = get_logger(logger_name)

    async def unauthenticated(_request: Any, exc: Exception) -> Any:
        return JSONResponse(
            status_code=401, content={"error": str(exc)}, headers={"WWW-Authenticate": "Bearer"}
        )

    async def forbidden(_request: Any, exc: Exception) -> Any:
        return JSONResponse(status_code=403, content={"error": str(exc)})

    async def over_quota(_request: Any, exc: Exception) -> Any:
        assert isinstance(exc, CallerOverQuota)
        log.info("request_refused", caller=exc.caller, reason=exc.limit, error=exc.reason)
        content = {"error": exc.reason, "limit": exc.limit, "retry_after_s": exc.retry_after_s}
        headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(status_code=429, content=content, headers=headers)

    app.add_exception_handler(CallerUnauthenticated, unauthenticated)
    app.add_exception_handler(CallerForbidden, forbidden)
    app.add_exception_handler(CallerOverQuota, over_quota)
    if keys.required:
        app.add_middleware(CallerGuard, keys=keys, metrics=metrics, log=log)


class CallerGuard:
    """Pure ASGI middleware: refuse an inference request whose key is missing, unknown or
    revoked before its body is read (so an anonymous client costs no decoding)."""

    def __init__(self, app: Any, keys: CallerKeys, metrics: BiasScorerMetrics, log: Any) -> None:
        self.app, self.keys, self.metrics, self.log = app, keys, metrics, log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not INFER_PATHS.fullmatch(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value for name, value in scope.get("headers") or []
        }
        try:
            self.keys.authenticate(headers)
        except CallerUnauthenticated as exc:
            self._refused(UNAUTHENTICATED, "unauthenticated", exc.reason)
            await send_json(send, 401, {"error": exc.reason}, **{"www-authenticate": "Bearer"})
            return
        except CallerForbidden as exc:
            self._refused(exc.caller, "revoked", exc.reason)
            await send_json(send, 403, {"error": exc.reason})
            return
        await self.app(scope, receive, send)

    def _refused(self, caller: str, limit: str, reason: str) -> None:
        self.metrics.caller_refused.labels(caller, limit).inc()
        self.log.info("request_refused", reason=limit, error=reason)
