"""msgpack codec for envelopes, with validation that never crashes on bad input.

Wire form: a msgpack map ``{"id", "type", "v", "from", "at", "ops"}`` whose ``ops`` is
a list of arrays ``[tag, field1, field2, ...]`` in the record's field order.
Decoding checks the envelope's size first, then every field's type and bound (format,
length, range: ``contracts.operations.FIELD_BOUNDS``); anything off raises a
``DecodeError`` subclass whose message names the field and the limit, never the value
(the dead-letter reason and the logs carry it, and the value may be personal data).
Encoding checks the same lengths and ranges, so a service never sends what its peers
would refuse; only a core-composed ``detail`` is cut short instead (see ``Text.truncated``).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

import msgpack

from contracts.envelope import MESSAGE_TYPE, SCHEMA_VERSION, SUPPORTED_VERSIONS, Envelope
from contracts.identifiers import (
    ADDRESS_FORMAT,
    IDENTIFIER_CHARACTERS,
    IDENTIFIER_FORMAT,
    MAX_ADDRESS_LENGTH,
    MAX_IDENTIFIER_LENGTH,
    REGION_CODE_FORMAT,
    SENDER_FORMAT,
)
from contracts.operations import (
    ALL_OPERATIONS,
    MAX_TIME_MS,
    Form,
    Operation,
    Text,
    Whole,
    field_bound,
)

MAX_OPERATIONS: Final = 10_000
"""More operations than this in one envelope is treated as malformed."""

MAX_MESSAGE_BYTES: Final = 1024 * 1024
"""The largest envelope, in bytes, that is decoded (or encoded) at all. The broker's
``max_message_size`` (deploy/rabbitmq/rabbitmq.conf) is the same, so an oversized
message is refused at the door. A publisher's 200 operations of the largest kind (a
``BillOutcome`` with a 512-character detail, about 2.3 kB) take half of it."""


class DecodeError(ValueError):
    """The bytes are not a valid envelope. ``str(error)`` says why."""


class MalformedMessage(DecodeError):
    """Not msgpack, not an envelope, or a field of the wrong type."""


class OutOfBounds(MalformedMessage):
    """A field of the right type but out of its bounds: too long, out of format, out of
    range, or an envelope too large. The message names the field and the limit only."""


class UnknownMessageType(DecodeError):
    """An envelope type or operation tag this version does not know."""


class UnsupportedVersion(DecodeError):
    """A schema version this version does not speak."""


_Check = Callable[[Any], Any]

_FORMATS: Final = {
    Form.REGION_CODE: re.compile(REGION_CODE_FORMAT),
    Form.IDENTIFIER: re.compile(IDENTIFIER_FORMAT),
    Form.ADDRESS: re.compile(ADDRESS_FORMAT),
}
# Region codes and addresses are few and recur in every message: a set lookup costs a
# fraction of the match. Only valid values are remembered.
_KNOWN_VALID: Final[dict[Form, set[str]]] = {Form.REGION_CODE: set(), Form.ADDRESS: set()}
_KNOWN_CAPACITY: Final = 10_000
_TAG_SHAPE: Final = re.compile(r"[a-z][a-z0-9_.]{0,39}")


def _shown(value: object) -> str:
    """An unknown tag or type for an error message, if it looks like one (version skew is
    worth seeing); anything else is not echoed."""
    if isinstance(value, str) and _TAG_SHAPE.fullmatch(value):
        return repr(value)
    return "(not shown)"


def _check_for(
    name: str, annotation: Any, bound: Text | Whole | None, low: int, may_be_empty: bool
) -> _Check:
    """Build a function that validates (and converts) one decoded field value.

    ``bound`` is the field's bound (None for booleans and enums), ``low`` an integer's
    minimum (``-maximum`` for a signed field), ``may_be_empty`` whether a formatted text
    field may also be ``""``.
    """
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported annotation for {name}: {annotation}")
        optional = True
        annotation = members[0]
    # One specialised function per field, chosen here once: checks run for every field
    # of every operation received, so they should not re-inspect the annotation each time.
    check: _Check
    if annotation is bool:

        def check(value: Any) -> Any:
            if type(value) is not bool:
                raise _wrong_type(name, bool, value)
            return value

    elif annotation is int and isinstance(bound, Whole):
        high = bound.maximum
        out_of_range = _out_of_range_message(name, low, high)

        def check(value: Any) -> Any:
            if type(value) is not int:
                raise _wrong_type(name, int, value)
            if not low <= value <= high:
                raise OutOfBounds(out_of_range)
            return value

    elif annotation is str and isinstance(bound, Text):
        check = _text_check(name, bound, may_be_empty)

    elif isinstance(annotation, type) and issubclass(annotation, StrEnum):
        by_value = {member.value: member for member in annotation}
        unknown = f"field {name!r}: not one of the {len(by_value)} values of {annotation.__name__}"

        def check(value: Any) -> Any:
            member = by_value.get(value) if type(value) is str else None
            if member is None:
                raise MalformedMessage(unknown)
            return member

    else:
        raise TypeError(f"unsupported annotation or bound for {name}: {annotation}, {bound}")
    if not optional:
        return check
    required = check

    def check_optional(value: Any) -> Any:
        return None if value is None else required(value)

    return check_optional


def _text_check(name: str, bound: Text, may_be_empty: bool) -> _Check:
    if bound.form is Form.FREE:
        limit = bound.max_length
        too_long = f"field {name!r}: longer than {limit} characters"

        def check(value: Any) -> Any:
            if type(value) is not str:
                raise _wrong_type(name, str, value)
            if len(value) > limit:
                raise OutOfBounds(too_long)
            return value

        return check
    # The formats bound the length themselves ({1,64} and the like), so a huge value
    # fails within a few dozen steps.
    fullmatch = _FORMATS[bound.form].fullmatch
    if may_be_empty:
        neither = f"field {name!r}: neither empty nor {bound.form.value}"

        def check_or_empty(value: Any) -> Any:
            if type(value) is not str:
                raise _wrong_type(name, str, value)
            if value and fullmatch(value) is None:
                raise OutOfBounds(neither)
            return value

        return check_or_empty
    not_in_form = f"field {name!r}: not {bound.form.value}"
    known = _KNOWN_VALID.get(bound.form)
    if known is None:

        def check_in_form(value: Any) -> Any:
            if type(value) is not str:
                raise _wrong_type(name, str, value)
            if fullmatch(value) is None:
                raise OutOfBounds(not_in_form)
            return value

        return check_in_form
    remembered = known  # for mypy: not None in the closure

    def check_known_or_in_form(value: Any) -> Any:
        if type(value) is not str:
            raise _wrong_type(name, str, value)
        if value not in remembered:
            if fullmatch(value) is None:
                raise OutOfBounds(not_in_form)
            if len(remembered) >= _KNOWN_CAPACITY:
                remembered.clear()  # a flood of distinct valid values costs speed only
            remembered.add(value)
        return value

    return check_known_or_in_form


def _out_of_range_message(name: str, low: int, high: int) -> str:
    if low == 0:
        return f"field {name!r}: negative or above {high} (allowed 0..{high})"
    return f"field {name!r}: outside {low}..{high}"


def _wrong_type(name: str, expected: type, value: Any) -> MalformedMessage:
    return MalformedMessage(
        f"field {name!r}: expected {expected.__name__}, got {type(value).__name__}"
    )


def _truncated(value: str, limit: int) -> str:
    return value[: limit - 1] + "…"


class _Schema:
    """How to check and build one operation class from its wire array, and how to check
    one before it is sent."""

    def __init__(self, cls: type[Operation]) -> None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        self.cls = cls
        self.names = [f.name for f in fields]
        self.required = sum(
            1
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        self.checks: list[_Check] = []
        self._text_limits: list[tuple[int, int]] = []
        """(position, maximum length) of each text field, checked when encoding."""
        self._ranges: list[tuple[int, int, int]] = []
        """(position, minimum, maximum) of each integer field, checked when encoding."""
        self._truncated: set[int] = set()
        """Positions of the text fields cut short rather than refused when encoding."""
        for i, f in enumerate(fields):
            annotation = hints[f.name]
            bound = None if annotation is bool or _is_enum(annotation) else field_bound(f.name)
            low = 0
            if isinstance(bound, Whole):
                low = -bound.maximum if f.name in cls.SIGNED else 0
                self._ranges.append((i, low, bound.maximum))
            elif isinstance(bound, Text):
                self._text_limits.append((i, bound.max_length))
                if bound.truncated:
                    self._truncated.add(i)
            may_be_empty = f.name in cls.MAY_BE_EMPTY or f.default == ""
            self.checks.append(_check_for(f.name, annotation, bound, low, may_be_empty))
        self.values = _getter(self.names)
        """The field values of a record, in wire order (an enum value is its string: msgpack
        packs a ``StrEnum`` as the ``str`` it is)."""
        self.encoded = _encoder(
            cls.TAG, self.values, self._text_limits, self._ranges, self._checked_slowly
        )
        """The wire array of a record, its lengths and ranges checked (details cut short)."""

    def build(self, values: list[Any]) -> Operation:
        if not self.required <= len(values) <= len(self.checks):
            raise MalformedMessage(
                f"operation {self.cls.TAG!r}: expected {self.required}..{len(self.checks)} "
                f"fields, got {len(values)}"
            )
        return self.cls(*[check(v) for check, v in zip(self.checks, values, strict=False)])

    def _checked_slowly(self, values: tuple[Any, ...]) -> list[Any]:
        """After the fast check failed: cut a detail short, or say which field is off."""
        for i, limit in self._text_limits:
            if len(values[i]) > limit:
                values = self._cut_or_refuse(values, i, limit)
        for i, low, high in self._ranges:
            if not low <= values[i] <= high:
                raise OutOfBounds(
                    f"cannot send {self.cls.TAG!r}: "
                    + _out_of_range_message(self.names[i], low, high)
                )
        return [self.cls.TAG, *values]

    def _cut_or_refuse(self, values: tuple[Any, ...], i: int, limit: int) -> tuple[Any, ...]:
        if i not in self._truncated:
            raise OutOfBounds(
                f"cannot send {self.cls.TAG!r}: field {self.names[i]!r}: "
                f"longer than {limit} characters"
            )
        return (*values[:i], _truncated(values[i], limit), *values[i + 1 :])


def _encoder(
    tag: str,
    values_of: Callable[[Any], tuple[Any, ...]],
    text_limits: list[tuple[int, int]],
    ranges: list[tuple[int, int, int]],
    checked_slowly: Callable[[tuple[Any, ...]], list[Any]],
) -> Callable[[Operation], list[Any]]:
    """A function that reads a record's values and checks every length and range in one
    expression, as ``dataclasses`` builds its methods: sending is the common case and a
    loop over the fields costs several times more. The code is made from the schema's
    positions and limits (integers) only; anything out of bounds goes the slow way."""
    terms = [f"len(v[{i}]) <= {limit}" for i, limit in text_limits]
    terms += [f"{low} <= v[{i}] <= {high}" for i, low, high in ranges]
    source = (
        "def encoded(record):\n"
        "    v = values_of(record)\n"
        f"    if {' and '.join(terms) or 'True'}:\n"
        "        return [tag, *v]\n"
        "    return checked_slowly(v)\n"
    )
    namespace: dict[str, Any] = {
        "values_of": values_of,
        "tag": tag,
        "checked_slowly": checked_slowly,
    }
    exec(source, namespace)
    encoded: Callable[[Operation], list[Any]] = namespace["encoded"]
    return encoded


def _is_enum(annotation: Any) -> bool:
    members = typing.get_args(annotation) or (annotation,)
    return any(isinstance(m, type) and issubclass(m, StrEnum) for m in members)


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """One C-level call that reads every field (``attrgetter`` of one name returns the
    bare value, so that case is wrapped; every operation has at least one field)."""
    if len(names) == 1:
        [name] = names
        return lambda record: (getattr(record, name),)
    return operator.attrgetter(*names)


_SCHEMAS: dict[str, _Schema] = {cls.TAG: _Schema(cls) for cls in ALL_OPERATIONS}

_MESSAGE_ID = re.compile(IDENTIFIER_FORMAT).fullmatch
_SENDER = re.compile(SENDER_FORMAT).fullmatch


def encode_operation(op: Operation) -> list[Any]:
    """The wire array of one operation; ``OutOfBounds`` if a field exceeds its bound."""
    return _SCHEMAS[op.TAG].encoded(op)


def encode(envelope: Envelope) -> bytes:
    """Serialize an envelope to msgpack bytes.

    Raises ``OutOfBounds`` for a field its receiver would refuse as too long or out of
    range, or for an envelope larger than ``MAX_MESSAGE_BYTES``.
    """
    if not envelope.operations:
        raise ValueError("an envelope carries at least one operation")
    if len(envelope.message_id) > MAX_IDENTIFIER_LENGTH:
        raise OutOfBounds(f"envelope field 'id': longer than {MAX_IDENTIFIER_LENGTH} characters")
    if len(envelope.sender) > MAX_ADDRESS_LENGTH:
        raise OutOfBounds(f"envelope field 'from': longer than {MAX_ADDRESS_LENGTH} characters")
    body = {
        "id": envelope.message_id,
        "type": envelope.message_type,
        "v": envelope.schema_version,
        "from": envelope.sender,
        "at": envelope.sent_at_ms,
        "ops": [_SCHEMAS[op.TAG].encoded(op) for op in envelope.operations],
    }
    if envelope.extra:
        body["extra"] = envelope.extra
    if envelope.destinations:
        if len(envelope.destinations) != len(envelope.operations):
            raise ValueError("an envelope names one destination per operation, or none")
        body["to"] = list(envelope.destinations)
    data: bytes = msgpack.packb(body, use_bin_type=True)
    if len(data) > MAX_MESSAGE_BYTES:
        raise OutOfBounds(
            f"envelope of {len(data)} bytes is above the maximum of {MAX_MESSAGE_BYTES}: "
            "send fewer operations per envelope"
        )
    return data


def decode_operation(raw: Any) -> Operation:
    """Build one operation from its wire array, validating every field."""
    if not isinstance(raw, list) or not raw:
        raise MalformedMessage("an operation is a non-empty array")
    tag = raw[0]
    if not isinstance(tag, str):
        raise MalformedMessage("an operation's tag is a string")
    schema = _SCHEMAS.get(tag)
    if schema is None:
        raise UnknownMessageType(f"unknown operation {_shown(tag)}")
    return schema.build(raw[1:])


def decode(data: bytes) -> Envelope:
    """Parse msgpack bytes into an envelope, or raise a ``DecodeError``."""
    if len(data) > MAX_MESSAGE_BYTES:
        # Before unpacking: a large body costs memory and time before any check runs.
        raise OutOfBounds(f"envelope above the maximum of {MAX_MESSAGE_BYTES} bytes")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=0)
    except Exception as error:  # msgpack raises several unrelated types
        raise MalformedMessage(f"not msgpack: {type(error).__name__}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("an envelope is a map")
    message_type = body.get("type")
    if message_type != MESSAGE_TYPE:
        raise UnknownMessageType(f"unknown message type {_shown(message_type)}")
    version = body.get("v")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        shown = version if type(version) is int and abs(version) < 10**6 else "(not shown)"
        raise UnsupportedVersion(
            f"unsupported schema version {shown}; this build speaks {sorted(SUPPORTED_VERSIONS)}"
        )
    message_id, sender, sent_at, ops = (
        body.get("id"),
        body.get("from"),
        body.get("at"),
        body.get("ops"),
    )
    if not isinstance(message_id, str) or not message_id:
        raise MalformedMessage("envelope field 'id' must be a non-empty string")
    if _MESSAGE_ID(message_id) is None:
        raise OutOfBounds(f"envelope field 'id': not {Form.IDENTIFIER.value}")
    if not isinstance(sender, str):
        raise MalformedMessage("envelope field 'from' must be a string")
    if _SENDER(sender) is None:
        raise OutOfBounds(
            f"envelope field 'from': not a sender name "
            f"(1 to {MAX_ADDRESS_LENGTH} of {IDENTIFIER_CHARACTERS})"
        )
    if type(sent_at) is not int:
        raise MalformedMessage("envelope field 'at' must be an integer (ms)")
    if not 0 <= sent_at <= MAX_TIME_MS:
        raise OutOfBounds(f"envelope field 'at': outside 0..{MAX_TIME_MS}")
    if not isinstance(ops, list) or not ops:
        raise MalformedMessage("envelope field 'ops' must be a non-empty array")
    if len(ops) > MAX_OPERATIONS:
        raise OutOfBounds(f"envelope field 'ops': more than {MAX_OPERATIONS} operations")
    extra = body.get("extra", {})
    if not isinstance(extra, dict):
        raise MalformedMessage("envelope field 'extra' must be a map")
    destinations = _destinations(body.get("to", ()), len(ops))
    return Envelope(
        message_id=message_id,
        sender=sender,
        sent_at_ms=sent_at,
        operations=[decode_operation(op) for op in ops],
        message_type=MESSAGE_TYPE,
        schema_version=SCHEMA_VERSION if version == SCHEMA_VERSION else version,
        extra=extra,
        destinations=destinations,
    )


def _destinations(raw: Any, n_ops: int) -> tuple[str, ...]:
    """The envelope's ``to``: none, or one region code per operation."""
    if raw == ():
        return ()
    if not isinstance(raw, list) or len(raw) != n_ops:
        raise MalformedMessage("envelope field 'to' must be an array of one region per operation")
    known = _KNOWN_VALID[Form.REGION_CODE]
    region_code = _FORMATS[Form.REGION_CODE].fullmatch
    for code in raw:
        if type(code) is not str:
            raise MalformedMessage("envelope field 'to' must hold region codes (strings)")
        if code in known:
            continue
        if region_code(code) is None:
            raise OutOfBounds(f"envelope field 'to': not {Form.REGION_CODE.value}")
        if len(known) < _KNOWN_CAPACITY:
            known.add(code)
    return tuple(raw)
