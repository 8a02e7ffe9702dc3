"""Messages, codec and reason codes shared by every gongji service."""

from contracts.codec import (
    MAX_MESSAGE_BYTES,
    DecodeError,
    MalformedMessage,
    OutOfBounds,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    encode,
)
from contracts.envelope import MESSAGE_TYPE, SCHEMA_VERSION, Envelope
from contracts.reasons import COMMITTED, ReasonCode

__all__ = [
    "COMMITTED",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYPE",
    "SCHEMA_VERSION",
    "DecodeError",
    "Envelope",
    "MalformedMessage",
    "OutOfBounds",
    "ReasonCode",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decode",
    "encode",
]
