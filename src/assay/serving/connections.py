"""Connection-level limits of the REST server, below ASGI: how large a request head may be and
how long a client may take to send its head and its body.

uvicorn (httptools) bounds none of these: a client may send headers forever, or the first
2 MB - 1 byte of a body and then hold the connection open, each connection keeping its bytes
in memory. :func:`guarded_protocol` is uvicorn's httptools protocol with:

- a request head over ``max_header_bytes`` answered 431 and closed;
- a head not complete ``header_timeout_s`` after the connection opened (or after its request
  began) answered 408 and closed;
- a body not complete ``body_timeout_s`` after its head answered 408 (when no response has
  started) and closed; the ASGI app sees the disconnect, and the body bytes it held are freed.

A refused connection is closed gracefully: the answer, the end of the stream, and ``LINGER_S``
of reading and dropping what the client still sends (a client mid-send reads the answer instead
of a reset).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_END = b"\r\n\r\n"
LINGER_S = 2.0
"""How long a refused connection still reads (and drops) what its client sends before closing."""


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float


def guarded_protocol(limits: ConnectionLimits) -> Callable[..., HttpToolsProtocol]:
    """uvicorn's httptools protocol enforcing ``limits``, for ``uvicorn.Config(http=...)``
    (a partial, so it pickles into KServe's worker processes)."""
    return partial(GuardedHttpToolsProtocol, limits=limits)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: its end may span two reads
        self._refused = False

    # -- connection events --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
            ended = HEAD_END in self._tail + data[:3] or HEAD_END in data
            if self._head_bytes > self.limits.max_header_bytes and not ended:
                self._refuse(431, "request head")
                return
            self._tail = data[-3:]
        super().data_received(data)

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if not self._in_head:  # the next request on a kept-alive connection
            self._start_head()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(431, "request head")
            return
        self._in_head = False
        self._arm(self.limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()

    # -- deadlines ----------------------------------------------------------------------------
    def _start_head(self) -> None:
        self._in_head, self._head_bytes, self._tail = True, 0, b""
        self._arm(self.limits.header_timeout_s, self._head_too_slow)

    def _arm(self, seconds: float, on_timeout: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_timeout)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self._head_bytes:
            self._refuse(408, f"request head not complete within {self.limits.header_timeout_s} s")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing sent: nobody to answer

    def _body_too_slow(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or cycle.response_started:
            self.transport.close()
            return
        self._refuse(408, f"request body not complete within {self.limits.body_timeout_s} s")

    def _linger_then_close(self) -> None:
        """Send the end of the stream after the answer, drop what the client still sends for up
        to ``LINGER_S``, then close. Closing at once with unread bytes makes the kernel reset
        the connection: a client still sending would get the reset instead of the answer."""
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _refuse(self, status: int, what: str) -> None:
        """Answer ``status`` with a one-line JSON error, close, and ignore anything more."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        if status == 431:
            what = f"{what} over {self.limits.max_header_bytes} bytes (--max-header-bytes)"
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        body = b'{"error": "%s"}' % what.replace('"', "'").encode()
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason)
        head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        self.transport.write(head + body)
        self._linger_then_close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
