"""Bounds: every field's format, length and range are enforced, and errors never echo values.

A well-formed but out-of-bounds message is refused with ``OutOfBounds`` (a
``MalformedMessage``, so the inbox dead-letters it like any other), whose message names
the field and the limit; the offending value, which may be personal data, is not in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from typing import Any, cast

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.topology import Topology
from clearinghouse.core import ClearinghouseCore
from contracts.codec import (
    MAX_MESSAGE_BYTES,
    MAX_OPERATIONS,
    DecodeError,
    MalformedMessage,
    OutOfBounds,
    decode,
    encode,
)
from contracts.envelope import Envelope
from contracts.identifiers import (
    ADDRESS_FORMAT,
    IDENTIFIER_FORMAT,
    MAX_IDENTIFIER_LENGTH,
    REGION_CODE_FORMAT,
    is_address,
    is_identifier,
    is_region_code,
)
from contracts.operations import (
    ALL_OPERATIONS,
    MAX_AMOUNT_FEN,
    MAX_DETAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SECRET_LENGTH,
    BillOutcome,
    BindingOutcome,
    CloseWindow,
    Commit,
    Credit,
    EnrollPerson,
    Flow,
    Form,
    Insurance,
    Operation,
    RegisterRegion,
    Relationship,
    RequestBinding,
    Text,
    Whole,
    WindowPosition,
    field_bound,
)
from contracts.reasons import ReasonCode
from gongji.cluster.seed import seed_population
from gongji.demo import play_on_sim
from gongji.load.generator import LoadConfig, LoadGenerator
from gongji.population import DEMO_REGIONS
from gongji.scenario import load_default_scenario
from regions.core import RegionCore
from tests.contracts.test_codec import envelope, sample
from tests.deploy.artefacts import RABBITMQ_CONF, conf_settings

PERSON = "420100-000081"
"""A person number as the populations make them: it must never show in an error."""


def wire(op: Operation) -> list[Any]:
    """The wire array of ``op`` as the codec sends it."""
    raw = msgpack.unpackb(encode(envelope(op)))
    ops: list[list[Any]] = raw["ops"]
    return ops[0]


def with_field(op: Operation, name: str, value: Any) -> bytes:
    """``op``'s envelope with one field's wire value replaced, bypassing the encoder."""
    raw = msgpack.unpackb(encode(envelope(op)))
    position = 1 + [f.name for f in dataclasses.fields(op)].index(name)
    raw["ops"][0][position] = value
    data: bytes = msgpack.packb(raw)
    return data


def refused(data: bytes, field: str) -> str:
    """Decode ``data`` expecting ``OutOfBounds`` for ``field``; the error's message."""
    with pytest.raises(OutOfBounds) as raised:
        decode(data)
    message = str(raised.value)
    assert repr(field) in message or field in message
    return message


# --- one case per kind of field ------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "field", "value", "limit"),
    [
        # identifiers (person numbers, transfer ids): too long, bad characters, empty
        (Commit("t1"), "transfer_id", PERSON + "-" + "9" * 64, "64"),
        (EnrollPerson(PERSON, Insurance.EMPLOYEE), "psn_no", PERSON + " ", "identifier"),
        (EnrollPerson(PERSON, Insurance.EMPLOYEE), "psn_no", PERSON + "\n", "identifier"),
        (EnrollPerson(PERSON, Insurance.EMPLOYEE), "psn_no", "张三" + PERSON, "identifier"),
        (EnrollPerson(PERSON, Insurance.EMPLOYEE), "psn_no", f"'{PERSON}'", "identifier"),
        (Commit("t1"), "transfer_id", "", "identifier"),
        # region codes
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "42010", "region code"),
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "042010", "region code"),
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "4201000", "region code"),
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "42O100", "region code"),
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "420100\n", "region code"),
        (RegisterRegion("420100", "武汉", "湖北", True), "region", "", "region code"),
        (Credit("t1", 100, "510100"), "payer_region", PERSON, "region code"),
        # addresses
        (CloseWindow("c1", "client.x"), "reply_to", f"client.{PERSON} ", "address"),
        (CloseWindow("c1", "client.x"), "reply_to", f"queue.{PERSON}", "address"),
        (CloseWindow("c1", "client.x"), "reply_to", f"region.{PERSON}", "address"),
        # free text
        (RegisterRegion("420100", "武", "湖北", True), "name", PERSON * 6, str(MAX_NAME_LENGTH)),
        (
            EnrollPerson(PERSON, Insurance.EMPLOYEE, 0, "pw"),
            "secret",
            PERSON * 10,
            str(MAX_SECRET_LENGTH),
        ),
        (
            BillOutcome("t1", 0, 100, ""),
            "detail",
            f"{PERSON} is not insured " * 30,
            str(MAX_DETAIL_LENGTH),
        ),
        # amounts and other integers
        (Commit("t1"), "transfer_id", PERSON * 5, "64"),
        (Credit("t1", 100, "510100"), "amount_fen", MAX_AMOUNT_FEN + 1, str(MAX_AMOUNT_FEN)),
        (
            WindowPosition(1, "420100", 0, 0, 0, True, 0),
            "net_fen",
            -MAX_AMOUNT_FEN - 1,
            str(MAX_AMOUNT_FEN),
        ),
        (Credit("t1", 100, "510100", year=2026), "year", 20_260, "9999"),
        (WindowPosition(1, "420100", 0, 0, 0, True, 0), "window", 2**63 - 1, "1000000000"),
    ],
)
def test_out_of_bounds_fields_are_refused_without_echo(
    op: Operation, field: str, value: Any, limit: str
) -> None:
    message = refused(with_field(op, field, value), field)
    assert limit in message
    assert PERSON not in message
    assert not str(value) or str(value) not in message


def test_signed_fields_reach_minus_the_maximum_and_others_not_below_zero() -> None:
    at_limits = WindowPosition(1, "420100", MAX_AMOUNT_FEN, 0, -MAX_AMOUNT_FEN, True, 0)
    assert decode(encode(envelope(at_limits))).operations == [at_limits]
    refused(with_field(at_limits, "paid_fen", -1), "paid_fen")


def test_in_bounds_values_at_their_limits_round_trip() -> None:
    longest_id = "A" * MAX_IDENTIFIER_LENGTH
    ops: list[Operation] = [
        Credit(longest_id, MAX_AMOUNT_FEN, "510100", Flow.COPAY, longest_id, 9999, "é" * 512),
        RequestBinding(
            "r.1:x_y-z",
            "420100-000081",
            "s" * MAX_SECRET_LENGTH,
            "B1",
            "420100",
            Relationship.SPOUSE,
            f"client.{longest_id}",
        ),
        RegisterRegion("650100", "乌" * MAX_NAME_LENGTH, "新" * MAX_NAME_LENGTH, False),
        # Empty where the record allows it: a refused bill has no payer region, a refused
        # binding request no binding id, a close request may want no answer.
        BillOutcome("t1", 0, 100, "", ReasonCode.NO_BINDING, "B1 has no bound co-payer"),
        BindingOutcome("r1", "", ReasonCode.DUPLICATE_MISMATCH),
        CloseWindow("c1"),
        Credit("t1", 100, "510100"),
    ]
    assert decode(encode(envelope(*ops))).operations == ops


def test_empty_identifiers_are_refused_where_the_record_does_not_allow_them() -> None:
    refused(with_field(BillOutcome("t1", 0, 100, ""), "transfer_id", ""), "transfer_id")
    refused(with_field(Credit("t1", 100, "510100"), "payer_region", ""), "payer_region")


# --- the envelope ----------------------------------------------------------------------------


def raw_envelope(**changes: Any) -> bytes:
    raw = msgpack.unpackb(encode(envelope(Commit("t1"))))
    raw.update(changes)
    data: bytes = msgpack.packb(raw)
    return data


def test_an_oversized_envelope_is_refused_before_unpacking() -> None:
    # Not even msgpack: refused for its size, so the unpacker never ran on it.
    message = refused(b"\xc1" + PERSON.encode() * (MAX_MESSAGE_BYTES // 13 + 1), "bytes")
    assert str(MAX_MESSAGE_BYTES) in message and PERSON not in message
    well_formed = raw_envelope(ops=[["commit", PERSON]] * (MAX_MESSAGE_BYTES // 10))
    assert len(well_formed) > MAX_MESSAGE_BYTES
    with pytest.raises(OutOfBounds, match=str(MAX_MESSAGE_BYTES)):
        decode(well_formed)
    assert len(raw_envelope(ops=[["commit", "t"]] * 1000)) <= MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (raw_envelope(id=PERSON + " "), "id"),
        (raw_envelope(id=PERSON * 6), "id"),
        (raw_envelope(**{"from": f"region {PERSON}"}), "from"),
        (raw_envelope(**{"from": "region." + PERSON * 6}), "from"),
        (raw_envelope(at=-1), "at"),
        (raw_envelope(at=2**64 - 1), "at"),
        (raw_envelope(ops=[["commit", "t"]] * (MAX_OPERATIONS + 1)), "ops"),
    ],
)
def test_envelope_fields_are_bounded(data: bytes, field: str) -> None:
    assert PERSON not in refused(data, field)


def test_encoding_refuses_what_the_receiver_would_refuse() -> None:
    with pytest.raises(OutOfBounds, match=r"'psn_no'.*64") as raised:
        encode(envelope(EnrollPerson(PERSON * 5, Insurance.EMPLOYEE)))
    assert PERSON not in str(raised.value)
    with pytest.raises(OutOfBounds, match="'amount_fen'"):
        encode(envelope(Credit("t1", MAX_AMOUNT_FEN + 1, "510100")))
    with pytest.raises(OutOfBounds, match="'secret'"):
        encode(envelope(EnrollPerson("A1", Insurance.EMPLOYEE, 0, "x" * 129)))
    with pytest.raises(OutOfBounds, match=f"maximum of {MAX_MESSAGE_BYTES}"):
        encode(envelope(*[EnrollPerson("A1", Insurance.EMPLOYEE, 0, "秘" * 128)] * 3_000))
    with pytest.raises(OutOfBounds, match="'id'"):
        encode(Envelope("m" * 65, "clearinghouse", 0, [Commit("t1")]))


def test_a_core_composed_detail_is_cut_short_when_sent() -> None:
    """Refusing to send it would strand the transfer whose answer it carries."""
    long_detail = "left out, no answer in time: " + ", ".join([f"420100/{PERSON}"] * 40)
    sent = BillOutcome("t1", 0, 100, "", None, long_detail)
    [outcome] = decode(encode(envelope(sent))).operations
    assert isinstance(outcome, BillOutcome)
    assert len(outcome.detail) == MAX_DETAIL_LENGTH
    assert outcome.detail == long_detail[: MAX_DETAIL_LENGTH - 1] + "…"


def test_the_broker_refuses_messages_above_the_same_size() -> None:
    assert int(conf_settings(RABBITMQ_CONF)["max_message_size"]) == MAX_MESSAGE_BYTES


# --- every field has a bound, and what gongji makes is within it -----------------------------


def test_every_text_and_integer_field_has_a_bound() -> None:
    for cls in ALL_OPERATIONS:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (str, int):
                bound = field_bound(f.name)
                assert isinstance(bound, Text if hints[f.name] is str else Whole), f.name
    with pytest.raises(KeyError):
        field_bound("favourite_colour")


def record_traffic(monkeypatch: pytest.MonkeyPatch) -> list[Operation]:
    """Where every operation the cores receive and send is appended (the real cores, on
    the simulated network)."""
    seen: list[Operation] = []
    for cls in (ClearinghouseCore, RegionCore):
        handle, tick = cls.handle, cls.tick

        def handled(self: Any, op: Operation, now_ms: int, handle: Any = handle) -> Any:
            seen.append(op)
            effects = handle(self, op, now_ms)
            seen.extend(o.op for o in effects.outgoing)
            return effects

        def ticked(self: Any, now_ms: int, tick: Any = tick) -> Any:
            effects = tick(self, now_ms)
            seen.extend(o.op for o in effects.outgoing)
            return effects

        monkeypatch.setattr(cls, "handle", handled)
        monkeypatch.setattr(cls, "tick", ticked)
    return seen


@pytest.mark.timeout(180)
def test_everything_the_demo_sends_is_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    traffic = record_traffic(monkeypatch)
    asyncio.run(play_on_sim(load_default_scenario(), faults="all"))
    assert {type(op) for op in traffic} >= {EnrollPerson, RequestBinding, BillOutcome, Credit}
    for start in range(0, len(traffic), 200):
        batch = traffic[start : start + 200]
        assert decode(encode(envelope(*batch))).operations == batch


def test_the_load_generators_requests_and_population_are_within_bounds() -> None:
    seeded = seed_population(DEMO_REGIONS, 200, seed=3)
    assert all(is_identifier(p.psn_no) for p in seeded.population.persons)
    generator = LoadGenerator(
        cast(Any, None), Topology(namespace="bounds"), seeded, LoadConfig(rate=1, duration_s=1)
    )
    assert is_address(generator.address)
    request = generator._request(999_999_999)  # the longest sequence number it writes
    assert decode(encode(envelope(request.op))).operations == [request.op]


# --- fuzzing ---------------------------------------------------------------------------------


def in_bounds(cls: type[Operation], name: str, annotation: Any) -> st.SearchStrategy[Any]:
    """Any value the field admits."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = bool(args)
    kind = args[0] if args else annotation
    strategy: st.SearchStrategy[Any]
    if kind is bool:
        strategy = st.booleans()
    elif kind is int:
        bound = field_bound(name)
        assert isinstance(bound, Whole)
        low = -bound.maximum if name in cls.SIGNED else 0
        strategy = st.integers(low, bound.maximum)
    elif kind is str:
        bound = field_bound(name)
        assert isinstance(bound, Text)
        strategy = text_in(bound)
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        if bound.form is not Form.FREE and (name in cls.MAY_BE_EMPTY or default == ""):
            strategy = strategy | st.just("")
    else:
        strategy = st.sampled_from(list(kind))
    return strategy | st.none() if optional else strategy


def text_in(bound: Text) -> st.SearchStrategy[str]:
    if bound.form is Form.FREE:
        return st.text(max_size=bound.max_length)
    pattern = {
        Form.REGION_CODE: REGION_CODE_FORMAT,
        Form.IDENTIFIER: IDENTIFIER_FORMAT,
        Form.ADDRESS: ADDRESS_FORMAT,
    }[bound.form]
    return st.from_regex(pattern, fullmatch=True)


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    cls = draw(st.sampled_from(ALL_OPERATIONS))
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    return cls(**{f.name: draw(in_bounds(cls, f.name, hints[f.name])) for f in fields})


@settings(max_examples=400, deadline=None)
@given(st.lists(operations(), min_size=1, max_size=5))
def test_any_in_bounds_operations_round_trip(ops: list[Operation]) -> None:
    assert decode(encode(envelope(*ops))).operations == ops


MARK = "zq-PRIVATE-7"
"""Part of every out-of-bounds text the fuzzer makes: no error message may contain it."""


def out_of_bounds(bound: Text | Whole, low: int) -> st.SearchStrategy[Any]:
    if isinstance(bound, Whole):
        return st.integers(bound.maximum + 1, 2**64 - 1) | st.integers(-(2**63), low - 1)
    too_long = st.text(min_size=bound.max_length + 1, max_size=bound.max_length + 40)
    if bound.form is Form.FREE:
        return too_long.map(lambda v: MARK + v)
    outside = st.text(min_size=1, max_size=8).filter(
        lambda v: any(not c.isascii() or not (c.isalnum() or c in "._:-") for c in v)
    )
    return st.one_of(outside.map(lambda v: MARK + v), too_long.map(lambda v: MARK + v))


@st.composite
def one_field_out_of_bounds(draw: st.DrawFn) -> tuple[bytes, str, Any]:
    cls = draw(st.sampled_from(ALL_OPERATIONS))
    hints = typing.get_type_hints(cls)
    bounded = [f.name for f in dataclasses.fields(cls) if hints[f.name] in (str, int)]
    name = draw(st.sampled_from(bounded))
    bound = field_bound(name)
    low = -bound.maximum if isinstance(bound, Whole) and name in cls.SIGNED else 0
    value = draw(out_of_bounds(bound, low))
    return with_field(sample(cls), name, value), name, value


@settings(max_examples=400, deadline=None)
@given(one_field_out_of_bounds())
def test_any_out_of_bounds_field_is_refused_without_echo(case: tuple[bytes, str, Any]) -> None:
    data, name, value = case
    message = refused(data, name)
    assert MARK not in message and str(value) not in message


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_oversized_bytes_of_any_content_are_refused_for_their_size(tail: bytes) -> None:
    with pytest.raises(OutOfBounds):
        decode(b"\x00" * MAX_MESSAGE_BYTES + tail)


def test_out_of_bounds_is_a_malformed_message_and_a_decode_error() -> None:
    """The inbox dead-letters every ``DecodeError``, with its class name as the reason."""
    assert issubclass(OutOfBounds, MalformedMessage) and issubclass(OutOfBounds, DecodeError)
    assert is_region_code("420100") and not is_region_code("420100\n")
