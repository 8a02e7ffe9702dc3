"""Personal data stays out of the logs: person numbers become keyed tokens, secrets go."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from clearinghouse.core import ClearinghouseCore
from contracts.effects import Effects
from contracts.operations import Operation
from gongji.demo import play_on_sim
from gongji.scenario import load_default_scenario, population_of
from regions.core import RegionCore
from telemetry.logs import (
    DEVELOPMENT_LOG_KEY,
    LOG_KEY_VARIABLE,
    PersonalData,
    configure_logging,
    get_logger,
)

KEY = "test-deployment-key"
PAYER = "510100-000042"
BENEFICIARY = "420100-000081"
ID_CARD = "11010519491231002X"
TOKEN = re.compile(r"psn:[0-9a-f]{10}")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def logged(**configuration: Any) -> tuple[io.StringIO, structlog.typing.FilteringBoundLogger]:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, **configuration)
    return stream, get_logger(service="clearinghouse")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_tokens_are_stable_keyed_and_distinct() -> None:
    personal = PersonalData(KEY)
    token = personal.token(BENEFICIARY)
    assert TOKEN.fullmatch(token)
    assert personal.token(BENEFICIARY) == token == PersonalData(KEY.encode()).token(BENEFICIARY)
    expected = hmac.new(KEY.encode(), BENEFICIARY.encode(), hashlib.sha256).hexdigest()[:10]
    assert token == f"psn:{expected}"
    assert PersonalData("another-deployment").token(BENEFICIARY) != token
    assert personal.token(PAYER) != token


def test_personal_keys_are_tokenised_and_secrets_dropped() -> None:
    stream, log = logged(log_key=KEY)
    log.info(
        "binding_requested",
        transfer_id="t-1-0000005",
        region="420100",
        copayer=PAYER,
        beneficiary=BENEFICIARY,
        payer=PAYER,
        psn_no=BENEFICIARY,
        persons=[PAYER, BENEFICIARY],
        name="张三",
        secret="0b29f043f066",
        password="hunter2",
    )
    [line] = lines(stream)
    personal = PersonalData(KEY)
    assert line["copayer"] == line["payer"] == personal.token(PAYER)
    assert line["beneficiary"] == line["psn_no"] == personal.token(BENEFICIARY)
    assert line["persons"] == [personal.token(PAYER), personal.token(BENEFICIARY)]
    assert line["name"] == personal.token("张三", "name")
    assert "secret" not in line and "password" not in line
    # gongji's own identifiers stay readable
    assert (line["transfer_id"], line["region"]) == ("t-1-0000005", "420100")
    text = stream.getvalue()
    for personal_value in (PAYER, BENEFICIARY, "张三", "0b29f043f066", "hunter2"):
        assert personal_value not in text


def test_free_text_is_scrubbed_of_person_numbers_with_the_same_tokens() -> None:
    stream, log = logged(log_key=KEY)
    log.warning(
        "transfer_finished",
        psn_no=BENEFICIARY,
        detail=f"left out, no answer in time: 510100/{PAYER}, 420100/{BENEFICIARY}",
        reason=f"identity check failed for {PAYER}",
        what=f"{ID_CARD} is not known in 110000",
        error=repr(KeyError(BENEFICIARY)),
        overdraft=f"psn:{PAYER}: available 0 < 100",
        transfer_id="x-420100-0001",
        positions=[("420100", -300), {"note": f"owed by {PAYER}", "secret": "x"}],
        plain="payer region 220100 (长春市 Changchun), 540100 (拉萨市 Lhasa) is not enabled",
    )
    [line] = lines(stream)
    personal = PersonalData(KEY)
    payer, beneficiary = personal.token(PAYER), personal.token(BENEFICIARY)
    assert line["detail"] == f"left out, no answer in time: 510100/{payer}, 420100/{beneficiary}"
    assert line["reason"] == f"identity check failed for {payer}"
    assert line["what"] == f"{personal.token(ID_CARD)} is not known in 110000"
    assert line["error"] == f"KeyError('{beneficiary}')"
    assert line["overdraft"] == f"psn:{payer}: available 0 < 100"  # a ledger account's name
    assert line["transfer_id"] == "x-420100-0001"  # ids are kept as they are
    assert line["psn_no"] == beneficiary  # the same person, the same token, in any key
    assert line["positions"] == [["420100", -300], {"note": f"owed by {payer}"}]
    assert line["plain"].startswith("payer region 220100 (长春市 Changchun)")


def test_tracebacks_stdlib_messages_and_context_are_scrubbed_in_both_formats() -> None:
    for json_lines in (True, False):
        stream, log = logged(log_key=KEY, json=json_lines)
        with structlog.contextvars.bound_contextvars(beneficiary=BENEFICIARY):
            try:
                raise LookupError(f"no account for {PAYER}")
            except LookupError:
                log.exception("handler_failed")
        logging.getLogger("aio_pika.test").warning("message for %s returned", PAYER)
        text = stream.getvalue()
        assert "LookupError: no account for psn:" in text
        assert PersonalData(KEY).token(BENEFICIARY) in text
        assert PAYER not in text and BENEFICIARY not in text, text


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOG_KEY_VARIABLE, raising=False)
    stream, log = logged()
    log.info("x", psn_no=BENEFICIARY)
    assert lines(stream)[0]["psn_no"] == PersonalData(DEVELOPMENT_LOG_KEY).token(BENEFICIARY)

    monkeypatch.setenv(LOG_KEY_VARIABLE, KEY)
    stream, log = logged()
    log.info("x", psn_no=BENEFICIARY)
    assert lines(stream)[0]["psn_no"] == PersonalData(KEY).token(BENEFICIARY)


# --- the whole demo, logged at DEBUG ------------------------------------------------------------


def log_everything_the_cores_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operation the cores receive and send, and every event they report, logged at
    DEBUG with all its fields: more than any shell logs, so nothing escapes the test."""
    log = get_logger(service="demo")

    def fields(record: Any) -> dict[str, Any]:
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}

    def log_op(event: str, op: Operation) -> None:
        log.debug(event, tag=op.TAG, **fields(op))

    def log_effects(effects: Effects) -> Effects:
        for o in effects.outgoing:
            log_op("sent", o.op)
        for e in effects.events:
            log.debug(type(e).__name__, **fields(e))
        return effects

    for cls in (ClearinghouseCore, RegionCore):
        handle, tick = cls.handle, cls.tick

        def handled(self: Any, op: Operation, now_ms: int, handle: Any = handle) -> Any:
            log_op("received", op)
            return log_effects(handle(self, op, now_ms))

        def ticked(self: Any, now_ms: int, tick: Any = tick) -> Any:
            return log_effects(tick(self, now_ms))

        monkeypatch.setattr(cls, "handle", handled)
        monkeypatch.setattr(cls, "tick", ticked)
    resume = ClearinghouseCore.resume

    def resumed(self: Any, now_ms: int) -> Any:
        return log_effects(resume(self, now_ms))

    monkeypatch.setattr(ClearinghouseCore, "resume", resumed)


@pytest.mark.timeout(180)
def test_the_demo_logs_no_person_number_nor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_default_scenario()
    population = population_of(scenario)
    person_numbers = {p.psn_no for p in population.persons}
    secrets = {p.secret for p in population.persons if p.secret}
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, log_key=KEY)
    log_everything_the_cores_do(monkeypatch)

    result = asyncio.run(play_on_sim(scenario, faults="all"))

    assert result.books_balanced and result.problems == []
    text = stream.getvalue()
    assert text.count("\n") > 10_000 and len(TOKEN.findall(text)) > 10_000
    assert '"detail": "identity check failed for psn:' in text  # free text was scrubbed
    # Every person number of this population has the shape region-serial; none is left.
    assert person_numbers.isdisjoint(re.findall(r"[0-9]{6}-[0-9]{6}", text))
    hex_runs = re.findall(r"[0-9a-f]{12,}", text)
    windows = {run[i : i + 12] for run in hex_runs for i in range(len(run) - 11)}
    assert secrets.isdisjoint(windows)
    assert '"secret"' not in text
