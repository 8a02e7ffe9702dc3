"""msgpack codec for envelopes, with validation that never crashes on bad input.

Wire form: a msgpack map ``{"id", "type", "v", "from", "at", "ops"}`` whose ``ops`` is
a list of arrays ``[tag, field1, field2, ...]`` in the record's field order.
Decoding checks every field's type; anything off raises a ``DecodeError`` subclass.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgpack

from contracts.envelope import MESSAGE_TYPE, SCHEMA_VERSION, SUPPORTED_VERSIONS, Envelope
from contracts.operations import ALL_OPERATIONS, Operation

MAX_OPERATIONS = 10_000
"""More operations than this in one envelope is treated as malformed."""


class DecodeError(ValueError):
    """The bytes are not a valid envelope. ``str(error)`` says why."""


class MalformedMessage(DecodeError):
    """Not msgpack, not an envelope, or a field of the wrong type."""


class UnknownMessageType(DecodeError):
    """An envelope type or operation tag this version does not know."""


class UnsupportedVersion(DecodeError):
    """A schema version this version does not speak."""


_Check = Callable[[Any], Any]


def _check_for(name: str, annotation: Any, signed: bool = False) -> _Check:
    """Build a function that validates (and converts) one decoded field value."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported annotation for {name}: {annotation}")
        optional = True
        annotation = members[0]
    # Amounts and times are never negative, unless the record declares the field signed.
    unsigned = (name.endswith("_fen") or name.endswith("_ms")) and not signed
    # One specialised function per field, chosen here once: checks run for every field
    # of every operation received, so they should not re-inspect the annotation each time.
    check: _Check
    if annotation is bool or annotation is str or (annotation is int and not unsigned):
        expected = annotation

        def check(value: Any) -> Any:
            if type(value) is not expected:
                raise _wrong_type(name, expected, value)
            return value

    elif annotation is int:

        def check(value: Any) -> Any:
            if type(value) is not int:
                raise _wrong_type(name, int, value)
            if value < 0:
                raise MalformedMessage(f"field {name!r}: negative value {value}")
            return value

    elif isinstance(annotation, type) and issubclass(annotation, StrEnum):
        by_value = {member.value: member for member in annotation}

        def check(value: Any) -> Any:
            member = by_value.get(value) if type(value) is str else None
            if member is None:
                raise MalformedMessage(f"field {name!r}: unknown value {value!r}")
            return member

    else:
        raise TypeError(f"unsupported annotation for {name}: {annotation}")
    if not optional:
        return check
    required = check

    def check_optional(value: Any) -> Any:
        return None if value is None else required(value)

    return check_optional


def _wrong_type(name: str, expected: type, value: Any) -> MalformedMessage:
    return MalformedMessage(
        f"field {name!r}: expected {expected.__name__}, got {type(value).__name__}"
    )


class _Schema:
    """How to check and build one operation class from its wire array."""

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
        self.checks = [_check_for(f.name, hints[f.name], f.name in cls.SIGNED) for f in fields]
        self.values = _getter(self.names)
        """The field values of a record, in wire order (an enum value is its string: msgpack
        packs a ``StrEnum`` as the ``str`` it is)."""

    def build(self, values: list[Any]) -> Operation:
        if not self.required <= len(values) <= len(self.checks):
            raise MalformedMessage(
                f"operation {self.cls.TAG!r}: expected {self.required}..{len(self.checks)} "
                f"fields, got {len(values)}"
            )
        return self.cls(*[check(v) for check, v in zip(self.checks, values, strict=False)])


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """One C-level call that reads every field (``attrgetter`` of one name returns the
    bare value, so that case is wrapped; every operation has at least one field)."""
    if len(names) == 1:
        [name] = names
        return lambda record: (getattr(record, name),)
    return operator.attrgetter(*names)


_SCHEMAS: dict[str, _Schema] = {cls.TAG: _Schema(cls) for cls in ALL_OPERATIONS}


def encode_operation(op: Operation) -> list[Any]:
    """The wire array of one operation."""
    return [op.TAG, *_SCHEMAS[op.TAG].values(op)]


def encode(envelope: Envelope) -> bytes:
    """Serialize an envelope to msgpack bytes."""
    if not envelope.operations:
        raise ValueError("an envelope carries at least one operation")
    body = {
        "id": envelope.message_id,
        "type": envelope.message_type,
        "v": envelope.schema_version,
        "from": envelope.sender,
        "at": envelope.sent_at_ms,
        "ops": [encode_operation(op) for op in envelope.operations],
    }
    if envelope.extra:
        body["extra"] = envelope.extra
    return msgpack.packb(body, use_bin_type=True)


def decode_operation(raw: Any) -> Operation:
    """Build one operation from its wire array, validating every field."""
    if not isinstance(raw, list) or not raw:
        raise MalformedMessage("an operation is a non-empty array")
    tag = raw[0]
    if not isinstance(tag, str):
        raise MalformedMessage("an operation's tag is a string")
    schema = _SCHEMAS.get(tag)
    if schema is None:
        raise UnknownMessageType(f"unknown operation {tag!r}")
    return schema.build(raw[1:])


def decode(data: bytes) -> Envelope:
    """Parse msgpack bytes into an envelope, or raise a ``DecodeError``."""
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=0)
    except Exception as error:  # msgpack raises several unrelated types
        raise MalformedMessage(f"not msgpack: {error}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("an envelope is a map")
    message_type = body.get("type")
    if message_type != MESSAGE_TYPE:
        raise UnknownMessageType(f"unknown message type {message_type!r}")
    version = body.get("v")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            f"unsupported schema version {version!r}; "
            f"this build speaks {sorted(SUPPORTED_VERSIONS)}"
        )
    message_id, sender, sent_at, ops = (
        body.get("id"),
        body.get("from"),
        body.get("at"),
        body.get("ops"),
    )
    if not isinstance(message_id, str) or not message_id:
        raise MalformedMessage("envelope field 'id' must be a non-empty string")
    if not isinstance(sender, str):
        raise MalformedMessage("envelope field 'from' must be a string")
    if type(sent_at) is not int:
        raise MalformedMessage("envelope field 'at' must be an integer (ms)")
    if not isinstance(ops, list) or not ops:
        raise MalformedMessage("envelope field 'ops' must be a non-empty array")
    if len(ops) > MAX_OPERATIONS:
        raise MalformedMessage(f"too many operations: {len(ops)} > {MAX_OPERATIONS}")
    extra = body.get("extra", {})
    if not isinstance(extra, dict):
        raise MalformedMessage("envelope field 'extra' must be a map")
    return Envelope(
        message_id=message_id,
        sender=sender,
        sent_at_ms=sent_at,
        operations=[decode_operation(op) for op in ops],
        message_type=MESSAGE_TYPE,
        schema_version=SCHEMA_VERSION if version == SCHEMA_VERSION else version,
        extra=extra,
    )
