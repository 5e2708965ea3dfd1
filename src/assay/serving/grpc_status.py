"""gRPC statuses KServe's interceptor does not know: a request refused for now (a full queue)
is RESOURCE_EXHAUSTED with when to retry, as REST answers 429 with Retry-After.

KServe maps every exception it does not know to INTERNAL. :class:`RetryableToStatus` first
handles an exception carrying ``retry_after_s``: RESOURCE_EXHAUSTED, its message, and trailing
metadata ``retry-after`` (seconds) plus ``grpc-status-details-bin``, a ``google.rpc.Status``
holding a ``google.rpc.RetryInfo`` (what gRPC clients with retry policies read).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import StatusCode
from kserve.protocol.grpc import server as kserve_grpc_server
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

STATUS_DETAILS_KEY = "grpc-status-details-bin"


class RetryableToStatus(ExceptionToStatusInterceptor):
    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str
    ) -> Any:
        retry_after_s = getattr(ex, "retry_after_s", None)
        if retry_after_s is None:
            return await super().handle_exception(ex, request_or_iterator, context, method_name)
        await context.abort(
            StatusCode.RESOURCE_EXHAUSTED,
            str(ex),
            trailing_metadata=retry_metadata(str(ex), retry_after_s),
        )


def retry_metadata(message: str, retry_after_s: float) -> tuple[tuple[str, str | bytes], ...]:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_after_s * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
    return (
        ("retry-after", str(int(retry_after_s))),
        (STATUS_DETAILS_KEY, status.SerializeToString()),
    )


def install_retryable_status() -> None:
    """Make KServe's gRPC server (built when the server starts) use :class:`RetryableToStatus`."""
    kserve_grpc_server.ExceptionToStatusInterceptor = RetryableToStatus
