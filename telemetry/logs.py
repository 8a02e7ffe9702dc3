"""Structured logging for every gongji service: one JSON object per line on stderr.

Call :func:`configure_logging` once at start-up (calling it again just reconfigures),
then log through :func:`get_logger`::

    log = get_logger(service="clearinghouse")
    log.info("transfer_committed", transfer_id=tid, region="420100", outcome="COMMITTED")

Every line has ``timestamp`` (ISO 8601, UTC), ``level`` and ``event``. Use these keys,
spelt exactly so, for the things they name, so lines can be filtered across services:
``event``, ``service``, ``region``, ``transfer_id``, ``outcome``. Values bound with
``structlog.contextvars.bind_contextvars`` (e.g. a ``transfer_id`` for one task) are
added to every line logged in that context.

Level filtering is done by the bound-logger class itself
(``structlog.make_filtering_bound_logger``): a call below the configured level is a
no-op method. Standard-library logging (aio-pika, aiormq, ...) is routed through the
same renderer, so the process writes one format only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO, cast

import structlog
from structlog.typing import FilteringBoundLogger, Processor

STABLE_KEYS: Final = ("event", "service", "region", "transfer_id", "outcome")
"""Log keys with a fixed meaning across all services."""

_LEVELS: Final = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}


class _Stderr:
    """Resolves ``sys.stderr`` at write time, so a replaced stderr (pytest) is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _LineLogger:
    """The final logger: writes each rendered line to a stream, whatever the level."""

    __slots__ = ("_stream",)

    def __init__(self, stream: TextIO | _Stderr) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        self._stream.write(message + "\n")
        self._stream.flush()

    log = debug = info = warning = warn = error = err = critical = fatal = exception = msg


class _LineLoggerFactory:
    def __init__(self, stream: TextIO | _Stderr) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> _LineLogger:
        return _LineLogger(self._stream)


class _StdlibHandler(logging.Handler):
    """The root handler :func:`configure_logging` installs (and replaces when called again)."""

    def __init__(self, stream: TextIO | _Stderr, formatter: logging.Formatter) -> None:
        super().__init__()
        self._stream = stream
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self._stream.write(line + "\n")
            self._stream.flush()
        except Exception:
            self.handleError(record)


def _level_number(level: str) -> int:
    try:
        return _LEVELS[level.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(_LEVELS)}") from None


def configure_logging(level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """Configure structlog (and stdlib logging) to write to ``stream`` (default stderr).

    ``json=True`` writes one JSON object per line; ``json=False`` a human-readable
    console format. Idempotent: calling it again replaces the previous configuration.
    """
    number = _level_number(level)
    out: TextIO | _Stderr = _Stderr() if stream is None else stream

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
        ]
    else:
        isatty = getattr(stream if stream is not None else sys.stderr, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty()))
        tail = [structlog.processors.StackInfoRenderer()]

    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        context_class=dict,
        logger_factory=_LineLoggerFactory(out),
        # Not cached, so a later configure_logging() (or structlog.testing.capture_logs)
        # also applies to loggers that were already used.
        cache_logger_on_first_use=False,
    )

    # Route stdlib logging through the same renderer, replacing our earlier handler.
    handler = _StdlibHandler(
        out,
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
                renderer,
            ],
        ),
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)


def get_logger(**bound: object) -> FilteringBoundLogger:
    """A logger with ``bound`` key-value pairs added to every line it writes."""
    return cast(FilteringBoundLogger, structlog.get_logger(**bound))
