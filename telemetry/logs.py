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

Personal data never reaches the output (docs/privacy.md): :class:`PersonalData`, the
last step before rendering, replaces person numbers with keyed tokens (``psn:1a2b3c4d5e``,
the same person always the same token, so lines stay correlatable), both as values of
personal keys and inside free text, and drops secrets. The key comes from
``GONGJI_LOG_KEY``; without it a fixed development key is used.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from contracts.identifiers import PERSON_NUMBER_IN_TEXT

STABLE_KEYS: Final = ("event", "service", "region", "transfer_id", "outcome")
"""Log keys with a fixed meaning across all services."""

LOG_KEY_VARIABLE: Final = "GONGJI_LOG_KEY"
"""The environment variable holding the per-deployment key of the personal-data tokens."""

DEVELOPMENT_LOG_KEY: Final = "gongji-development-log-key"
"""The key used when ``GONGJI_LOG_KEY`` is not set: anyone can compute its tokens from a
guessed person number, so a deployment sets its own key (and keeps it from the logs)."""

PERSON_KEYS: Final = frozenset(
    {"psn_no", "payer", "copayer", "beneficiary", "person", "persons", "copayers"}
)
"""Log keys whose values are person numbers: logged as ``psn:`` tokens."""

NAME_KEYS: Final = frozenset({"name", "person_name", "full_name"})
"""Log keys whose values may be a person's name: logged as ``name:`` tokens."""

SECRET_KEYS: Final = frozenset({"secret", "password", "passwd", "pin", "log_key"})
"""Log keys whose values are dropped with the key: a hash of a short secret is no
protection, it can be searched for."""

_VERBATIM_KEYS: Final = frozenset(
    {
        *("timestamp", "level", "logger", "service", "region", "queue", "address"),
        *("transfer_id", "binding_id", "request_id", "message_id"),
    }
)
"""Keys whose values are gongji's own names and ids, kept as they are so lines can be
followed by them (ids are made by gongji and its clients and hold no personal data; a
shape-alike id, ``x-420100-0001``, must not lose its readability)."""

_TOKEN_HEX: Final = 10
"""40 bits of the HMAC: unique enough to follow a person through a day's logs, too
short to be worth keeping as an identifier in its own right."""

_MAX_DEPTH: Final = 4


class PersonalData:
    """A structlog processor that keeps person numbers, names and secrets out of a line.

    Values of :data:`PERSON_KEYS` and :data:`NAME_KEYS` become keyed tokens (HMAC-SHA256
    with the deployment's key, truncated), :data:`SECRET_KEYS` are removed, and every
    other text (details, reasons, errors, tracebacks, stdlib messages) has the person
    numbers it embeds (``contracts.identifiers.PERSON_NUMBER_IN_TEXT``) replaced by the
    same tokens. Nested lists and maps are treated the same way.
    """

    def __init__(self, key: str | bytes) -> None:
        self._key = key.encode() if isinstance(key, str) else key

    def token(self, value: str, kind: str = "psn") -> str:
        """The stable token of a personal value, e.g. ``psn:1a2b3c4d5e``."""
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:_TOKEN_HEX]}"

    def scrub_text(self, text: str) -> str:
        """``text`` with every person number it embeds replaced by its token."""
        return PERSON_NUMBER_IN_TEXT.sub(self._token_of_match, text)

    def _token_of_match(self, match: re.Match[str]) -> str:
        return self.token(match.group(0))

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key in [k for k in event_dict if k in SECRET_KEYS]:
            del event_dict[key]
        for key, value in event_dict.items():
            if key not in _VERBATIM_KEYS:
                event_dict[key] = self._clean(key, value, 0)
        return event_dict

    def _clean(self, key: str, value: Any, depth: int) -> Any:
        if key in PERSON_KEYS:
            return self._tokens(value, "psn")
        if key in NAME_KEYS:
            return self._tokens(value, "name")
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth >= _MAX_DEPTH:
            return "(nested too deep)"
        if isinstance(value, Mapping):
            return {
                k: self._clean(str(k), v, depth + 1)
                for k, v in value.items()
                if str(k) not in SECRET_KEYS
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(key, v, depth + 1) for v in value]
        if isinstance(value, bool | int | float) or value is None:
            return value
        # Anything else would be rendered with repr() or str(): scrub that text.
        return self.scrub_text(str(value))

    def _tokens(self, value: Any, kind: str) -> Any:
        if value is None or value == "":
            return value
        if isinstance(value, list | tuple | set | frozenset):
            return [self._tokens(v, kind) for v in value]
        return self.token(str(value), kind)


def log_key_from_environment() -> str:
    """``GONGJI_LOG_KEY``, or the development key when it is unset or empty."""
    return os.environ.get(LOG_KEY_VARIABLE) or DEVELOPMENT_LOG_KEY


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


def configure_logging(
    level: str = "INFO",
    json: bool = True,
    stream: TextIO | None = None,
    log_key: str | None = None,
) -> None:
    """Configure structlog (and stdlib logging) to write to ``stream`` (default stderr).

    ``json=True`` writes one JSON object per line; ``json=False`` a human-readable
    console format. ``log_key`` keys the personal-data tokens (default: from
    ``GONGJI_LOG_KEY``). Idempotent: calling it again replaces the previous configuration.
    """
    number = _level_number(level)
    out: TextIO | _Stderr = _Stderr() if stream is None else stream
    personal = PersonalData(log_key if log_key is not None else log_key_from_environment())

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks are rendered to text before the personal data is taken out, in both
    # formats: an exception's message may embed a person number, and a console renderer
    # showing local variables would print whole records.
    tail: list[Processor] = [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        personal,
    ]
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        isatty = getattr(stream if stream is not None else sys.stderr, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty()))

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
