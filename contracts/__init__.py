"""Messages, codec and reason codes shared by every gongji service."""

from contracts.codec import (
    DecodeError,
    MalformedMessage,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    encode,
)
from contracts.envelope import MESSAGE_TYPE, SCHEMA_VERSION, Envelope
from contracts.reasons import COMMITTED, ReasonCode

__all__ = [
    "COMMITTED",
    "MESSAGE_TYPE",
    "SCHEMA_VERSION",
    "DecodeError",
    "Envelope",
    "MalformedMessage",
    "ReasonCode",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decode",
    "encode",
]
