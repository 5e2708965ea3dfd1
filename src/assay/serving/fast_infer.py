"""A lean route for plain v2 JSON inference requests, in front of KServe's FastAPI app.

KServe's REST path spends most of a single-row request outside the model: per-request CPU
accounting of its timing middleware (a ``getrusage`` call whose output goes to a silenced log),
route matching, FastAPI's body parsing and pydantic validation into ``InferenceRequest``, the
response validated again into ``InferenceResponse`` and serialised through ``jsonable_encoder``.

:class:`FastInfer` answers ``POST /v2/models/<name>/infer`` itself when the body is a *plain*
v2 JSON request: valid UTF-8 JSON (orjson), an object whose ``id`` is a string or absent, with
no ``parameters`` anywhere, ``inputs`` a list of ``{name: str, shape: [int...], datatype: str
(not FP16), data: list}`` and ``outputs`` absent or a list of ``{name: str}``; a JSON content
type (or none: see :class:`assay.serving.http.DefaultJsonContentType`), no binary-extension or
CloudEvent headers, and the model registered and ready. It builds the same
:class:`InferRequest` KServe would, runs it through the same ``Model.__call__`` (KServe's stage
histograms, the model's checks, metrics and request log) and answers with the same JSON bytes
and status codes; an exception goes to the app's own exception handlers, so a rejected request
gets the same status and message as on KServe's route.

Every other request -- including each body the pydantic schema might coerce or reject -- is
replayed unchanged into KServe's app, which answers exactly as it did before. The request-size
limit applies to both (:class:`assay.serving.http.RequestSizeLimit`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse, RequestedOutput
from starlette.requests import Request

from assay.obs.logging import get_logger

PREFIX, SUFFIX = "/v2/models/", "/infer"
BINARY_HEADER = b"inference-header-content-length"
JSON_HEADERS = [(b"content-type", b"application/json")]

log = get_logger("serving.fast_infer")

Asgi = Callable[..., Any]


class NotPlain(Exception):
    """The body is not a plain v2 JSON request: KServe's route decides."""


class FastInfer:
    """ASGI layer: plain v2 JSON inference requests on a lean route, the rest to ``app``.

    ``limit`` wraps a handler in the request-size limit (reads the body whole, or answers 413);
    ``handlers`` are the app's exception handlers (by class), looked up along the exception's MRO.
    """

    def __init__(
        self,
        app: Asgi,
        repository: ModelRepository,
        handlers: dict[Any, Any],
        limit: Callable[[Asgi], Asgi],
    ) -> None:
        self.app = app
        self.repository = repository
        self.handlers = handlers
        self.limited = limit(self._handle)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._candidate(scope):
            await self.limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _candidate(self, scope: dict[str, Any]) -> bool:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return False
        path: str = scope.get("path", "")
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return False
        if "/" in path[len(PREFIX) : -len(SUFFIX)]:
            return False  # versions/<v>/infer and the like: KServe's route
        return json_request(scope.get("headers") or [])

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        name = scope["path"][len(PREFIX) : -len(SUFFIX)]
        model = self.repository.get_model(name)
        try:
            if model is None or not await model.healthy():
                raise NotPlain
            request = plain_request(body, name)
        except NotPlain:
            await self.app(scope, replay(body, receive), send)
            return
        headers = request_headers(scope.get("headers") or [])
        try:
            response, response_headers = await model(request, headers=headers)
            content = response_body(response)
        except Exception as exc:  # the app's own handlers answer, as on KServe's route
            await self._error(scope, receive, send, exc)
            return
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers.items()]
        await send_body(send, 200, content, extra)

    async def _error(self, scope: dict[str, Any], receive: Any, send: Any, exc: Exception) -> None:
        handler = next(
            (self.handlers[kind] for kind in type(exc).__mro__ if kind in self.handlers), None
        )
        if handler is None:
            log.error("inference_unhandled", error=repr(exc))
            await send_body(send, 500, b"Internal Server Error", [], b"text/plain; charset=utf-8")
            return
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)


def json_request(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    """A JSON body for FastAPI: ``application/json`` (with parameters), or no JSON content type
    at all (made JSON by ``DefaultJsonContentType``); never binary or CloudEvent."""
    content_type = b""
    for key, value in raw_headers:
        if key == BINARY_HEADER or key.startswith(b"ce-"):
            return False
        if key == b"content-type" and not content_type:
            content_type = value
    if b"json" not in content_type:
        return True
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


async def read_body(receive: Any) -> bytes:
    """The body the size limit has already read whole (one message, replayed)."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that hands the already-read body once, then waits on the client."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return dict(await receive())
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def request_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """``dict(request.headers)`` as KServe's route builds it (the first of repeated headers)."""
    headers: dict[str, str] = {}
    for key, value in raw_headers:
        headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return headers


def plain_request(body: bytes, model_name: str) -> InferRequest:
    """The :class:`InferRequest` KServe builds from a plain v2 JSON body, or :class:`NotPlain`."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise NotPlain from None
    if not isinstance(document, dict) or document.get("parameters") is not None:
        raise NotPlain
    request_id, inputs = document.get("id"), document.get("inputs")
    if not (request_id is None or isinstance(request_id, str)) or not isinstance(inputs, list):
        raise NotPlain
    return InferRequest(
        request_id=request_id,
        model_name=model_name,
        infer_inputs=[_plain_input(tensor) for tensor in inputs],
        parameters=None,
        request_outputs=_plain_outputs(document.get("outputs")),
    )


def _plain_input(tensor: Any) -> InferInput:
    if not isinstance(tensor, dict) or tensor.get("parameters") is not None:
        raise NotPlain
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not (isinstance(name, str) and isinstance(datatype, str) and isinstance(data, list)):
        raise NotPlain
    if datatype == "FP16" or not isinstance(shape, list) or any(type(d) is not int for d in shape):
        raise NotPlain
    return InferInput(name=name, shape=shape, datatype=datatype, data=data, parameters={})


def _plain_outputs(outputs: Any) -> list[RequestedOutput] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise NotPlain
    requested = []
    for output in outputs:
        if not isinstance(output, dict) or output.get("parameters") is not None:
            raise NotPlain
        if not isinstance(output.get("name"), str):
            raise NotPlain
        requested.append(RequestedOutput(name=output["name"], parameters={}))
    return requested or None


def response_body(response: Any) -> bytes:
    """The JSON KServe's route sends for ``response`` (``InferenceResponse`` field order, unset
    optional fields as null)."""
    if not isinstance(response, InferResponse):
        raise TypeError(f"the model returned {type(response).__name__}, not an InferResponse")
    rest, json_length = response.to_rest()
    if json_length is not None or not isinstance(rest, dict):
        raise TypeError("binary outputs from a plain JSON request")
    outputs = [
        {
            "name": output["name"],
            "shape": output["shape"],
            "datatype": output["datatype"],
            "parameters": output.get("parameters"),
            "data": output["data"],
        }
        for output in rest["outputs"]
    ]
    document = {
        "model_name": rest["model_name"],
        "model_version": rest.get("model_version"),
        "id": rest["id"],
        "parameters": rest.get("parameters"),
        "outputs": outputs,
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


async def send_body(
    send: Any,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"application/json",
) -> None:
    raw = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
