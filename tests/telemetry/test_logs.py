"""configure_logging / get_logger: one JSON line per event with the stable keys."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from telemetry.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_bound_logger_writes_one_json_line_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    log = get_logger(service="clearinghouse", transfer_id="T-0001")
    log.info("transfer_committed", region="420100", outcome="COMMITTED")

    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = lines(captured.err)
    assert line["event"] == "transfer_committed"
    assert line["level"] == "info"
    assert line["service"] == "clearinghouse"
    assert line["transfer_id"] == "T-0001"
    assert line["region"] == "420100"
    assert line["outcome"] == "COMMITTED"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]


def test_level_filtering_and_reconfigure() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", stream=stream)
    configure_logging("WARNING", stream=stream)  # idempotent: still one line per event
    log = get_logger(service="region-420100")
    log.info("not_written")
    log.debug("not_written")
    log.warning("hold_expired", transfer_id="T-2")
    assert [line["event"] for line in lines(stream.getvalue())] == ["hold_expired"]

    configure_logging("debug", stream=stream)
    log.debug("now_written")
    assert lines(stream.getvalue())[-1]["event"] == "now_written"


def test_contextvars_and_exceptions_are_rendered() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = get_logger()
    with structlog.contextvars.bound_contextvars(transfer_id="T-3"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("handler_failed")
    [line] = lines(stream.getvalue())
    assert line["transfer_id"] == "T-3"
    assert line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


def test_stdlib_logging_is_rendered_as_json() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    configure_logging(stream=stream)
    logging.getLogger("aio_pika.test").warning("connection %s lost", "amqp")
    [line] = lines(stream.getvalue())
    assert line["event"] == "connection amqp lost"
    assert line["level"] == "warning"
    assert line["logger"] == "aio_pika.test"


def test_console_renderer_and_bad_level() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    get_logger(service="clearinghouse").info("started", region="420100")
    text = stream.getvalue()
    assert "started" in text and "region=420100" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(ValueError):
        configure_logging("LOUD")
