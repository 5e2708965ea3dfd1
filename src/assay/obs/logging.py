"""structlog configuration shared by the CLI, the components and the servers.

Every record goes through one stdlib handler on the root logger whose formatter is structlog's
``ProcessorFormatter``: assay's own structlog events and the records of every stdlib logger
(KServe, uvicorn, uvicorn.access, Ray, Python warnings...) come out in one format, each with
``logger``, ``level``, ``timestamp`` and ``event`` -- JSON lines with ``json=True`` (the servers,
``--log-json``), console lines otherwise.
"""

from __future__ import annotations

import logging
import sys

import structlog

LOG_LEVELS = ("debug", "info", "warning", "error")
HANDLER_NAME = "assay"  # the root handler this module installs (replaced, never duplicated)
# Libraries that attach their own handlers (and stop propagation) when they configure logging;
# their records are sent to the root handler instead, so they share the format.
OWN_HANDLER_LOGGERS = (
    "kserve",
    "kserve.trace",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "ray",
)
# HTTP client libraries log every request at INFO (the LLM SDKs' calls, the preflight's model
# lists): shown only at debug, so a run's console and a server's log are not one line per call.
PER_REQUEST_LOGGERS = ("httpx", "httpcore")


class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at write time.

    Binding the stream object at configure time breaks when a caller (a test runner, a CLI
    harness) swaps and closes ``sys.stderr`` later.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def level_number(level: str) -> int:
    """The stdlib level of one of LOG_LEVELS (any case); ValueError names the choices."""
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return logging.getLevelNamesMapping()[level.upper()]


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _handler(json: bool) -> logging.Handler:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(formatter)
    handler.set_name(HANDLER_NAME)
    return handler


def route_to_root(name: str) -> None:
    """Send logger ``name``'s records to the root handler (drop its own handlers)."""
    named = logging.getLogger(name)
    named.handlers.clear()
    named.propagate = True


def configure_logging(level: str = "info", json: bool = False) -> None:
    """Route structlog and stdlib logging to stderr in one format, at ``level`` (LOG_LEVELS)."""
    numeric = level_number(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)  # configured again (tests, CLI then server): one handler
    root.addHandler(_handler(json))
    root.setLevel(numeric)
    for name in OWN_HANDLER_LOGGERS:
        route_to_root(name)
    quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name) if name else structlog.get_logger()
