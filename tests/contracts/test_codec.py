"""The codec: every operation round-trips; bad bytes give typed errors, never a crash."""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from enum import StrEnum
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import (
    DecodeError,
    MalformedMessage,
    OutOfBounds,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    encode,
)
from contracts.envelope import Envelope
from contracts.operations import (
    ALL_OPERATIONS,
    Form,
    Operation,
    SettlementReport,
    SubmitBill,
    field_bound,
)

IN_FORM = {
    Form.REGION_CODE: "420100",
    Form.IDENTIFIER: "420100-000081",
    Form.ADDRESS: "client.load-1a2b3c4d",
}
"""A valid value of each text format (free text gets one of its own)."""


def sample(cls: type[Operation]) -> Operation:
    """An instance with a plausible, in-bounds value in every field."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if args:
            kind = args[0]
        if kind is bool:
            values[f.name] = True
        elif kind is int:
            maximum = getattr(field_bound(f.name), "maximum", 1234)
            values[f.name] = -5 if f.name in cls.SIGNED else min(1234, maximum)
        elif kind is str:
            form = getattr(field_bound(f.name), "form", Form.FREE)
            values[f.name] = IN_FORM.get(form, f"{f.name}-值")
        elif isinstance(kind, type) and issubclass(kind, StrEnum):
            values[f.name] = list(kind)[-1]
        else:  # pragma: no cover - a new field type needs a sample here
            raise AssertionError(f"no sample for {cls.__name__}.{f.name}: {kind}")
    return cls(**values)


def envelope(*ops: Operation) -> Envelope:
    return Envelope("m-1", "region.420100", 1_700_000_000_000, list(ops))


@pytest.mark.parametrize("cls", ALL_OPERATIONS, ids=lambda c: c.TAG)
def test_every_operation_round_trips(cls: type[Operation]) -> None:
    op = sample(cls)
    assert decode(encode(envelope(op))).operations == [op]


def test_a_batch_keeps_its_order() -> None:
    ops = [sample(cls) for cls in ALL_OPERATIONS]
    decoded = decode(encode(envelope(*ops)))
    assert decoded.operations == ops
    assert (decoded.message_id, decoded.sender) == ("m-1", "region.420100")


def test_a_mailbox_envelope_names_the_region_of_each_operation() -> None:
    ops = [SubmitBill("t", "p", 100, "client.x"), SubmitBill("u", "q", 5, "client.x")]
    named = dataclasses.replace(envelope(*ops), destinations=("420100", "420500"))
    decoded = decode(encode(named))
    assert decoded.operations == ops and decoded.destinations == ("420100", "420500")
    # An envelope to a region's own queue names none (and its wire form has no "to").
    assert decode(encode(envelope(*ops))).destinations == ()
    assert "to" not in msgpack.unpackb(encode(envelope(*ops)))
    with pytest.raises(ValueError, match="one destination per operation"):
        encode(dataclasses.replace(named, destinations=("420100",)))


def body(**changes: Any) -> bytes:
    raw = msgpack.unpackb(encode(envelope(SubmitBill("t", "p", 100, "client.x"))))
    raw.update(changes)
    return msgpack.packb(raw)


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        (b"\xc1", MalformedMessage, "not msgpack"),
        (b"", MalformedMessage, "not msgpack"),
        (msgpack.packb([1, 2]), MalformedMessage, "map"),
        (body(type="other"), UnknownMessageType, "other"),
        (body(v=99), UnsupportedVersion, "99"),
        (body(ops=[]), MalformedMessage, "ops"),
        (body(ops=[["no_such_op", 1]]), UnknownMessageType, "no_such_op"),
        (body(ops=[["submit_bill", "t", "p"]]), MalformedMessage, "fields"),
        (body(ops=[["submit_bill", "t", "p", -1, "client.c"]]), MalformedMessage, "negative"),
        (body(ops=[["submit_bill", "t", "p", True, "client.c"]]), MalformedMessage, "amount_fen"),
        (body(ops=[["submit_bill", "t", "p", 1.5, "client.c"]]), MalformedMessage, "amount_fen"),
        (body(ops=[["submit_bill", 7, "p", 1, "client.c"]]), MalformedMessage, "transfer_id"),
        (body(ops=[["enroll_person", "p", "martian"]]), MalformedMessage, "insurance"),
        (body(ops=[["credit", "t", 100, "420100", "loan"]]), MalformedMessage, "flow"),
        (
            body(ops=[["request_transfer", "t", "gift", "A", "420100", "B", "510100", 1]]),
            MalformedMessage,
            "field 'flow': not one of",  # (the refused value is never echoed)
        ),
        (body(id=""), MalformedMessage, "id"),
        (body(at="now"), MalformedMessage, "at"),
        (body(to="420100"), MalformedMessage, "'to'"),
        (body(to=["420100", "420500"]), MalformedMessage, "one region per operation"),
        (body(to=[420100]), MalformedMessage, "region codes"),
        (body(to=[["420100"]]), MalformedMessage, "region codes"),
        (body(to=["0420100"]), OutOfBounds, "field 'to': not a 6-digit region code"),
    ],
)
def test_bad_input_gives_a_typed_error(data: bytes, error: type[DecodeError], says: str) -> None:
    with pytest.raises(error, match=says):
        decode(data)


def test_signed_fields_may_be_negative_and_only_they() -> None:
    report = SettlementReport(1, "420100", 500, 200, -300, 2, 1, 2)
    assert decode(encode(envelope(report))).operations == [report]
    raw = msgpack.unpackb(encode(envelope(report)))
    raw["ops"][0][3] = -500  # [tag, window, region, paid_fen, ...]
    with pytest.raises(MalformedMessage, match="paid_fen"):
        decode(msgpack.packb(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(json_like, max_size=8), min_size=1, max_size=4))
def test_arbitrary_operation_arrays_never_crash(ops: list[list[Any]]) -> None:
    with contextlib.suppress(DecodeError):
        decode(body(ops=ops))
