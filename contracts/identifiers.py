"""Identifiers and their formats: region codes, identifiers, routing addresses.

The formats are stated here once; ``contracts.operations`` names which fields use which,
the codec enforces them on every message received, and ``telemetry.logs`` uses the shape
of person numbers to keep them out of free-text log values.
"""

from __future__ import annotations

import re
from typing import Final

REGION_CODE_FORMAT: Final = r"[1-9][0-9]{5}"
"""A 6-digit administrative division code such as ``420100``."""

_REGION_CODE = re.compile(REGION_CODE_FORMAT)


def is_region_code(value: str) -> bool:
    """True for a 6-digit administrative division code such as ``420100``."""
    return bool(_REGION_CODE.fullmatch(value))


def province_of(code: str) -> str:
    """The province-level code of a region code (GB/T 2260: its first two digits, then
    zeros): ``420100`` -> ``420000``; a municipality's own code is its province's."""
    return f"{check_region_code(code)[:2]}0000"


def is_province_code(value: str) -> bool:
    """True for a province-level code such as ``420000`` (a region code ending ``0000``)."""
    return is_region_code(value) and value.endswith("0000")


def check_region_code(value: str) -> str:
    """Return ``value`` if it is a 6-digit region code, else raise ``ValueError``."""
    if not is_region_code(value):
        raise ValueError(f"not a 6-digit region code: {value!r}")
    return value


def province_code(region: str) -> str:
    """The province of a region code (GB/T 2260): its first two digits, then ``0000``."""
    return check_region_code(region)[:2] + "0000"


MAX_IDENTIFIER_LENGTH: Final = 64
IDENTIFIER_CHARACTERS: Final = "A-Z a-z 0-9 . _ : -"
IDENTIFIER_FORMAT: Final = rf"[A-Za-z0-9._:-]{{1,{MAX_IDENTIFIER_LENGTH}}}"
"""Person numbers (``psn_no``, ``payer``, ``copayer``, ``beneficiary``), transfer, binding
and request ids, message ids and client names: 1 to 64 ASCII letters, digits and ``._:-``.

It admits what gongji makes (``420100-000081``, ``t-1-0000005``, ``bind-0000001``, uuid
hex, ``load-1a2b3c4d-000000001``) and what a real platform issues (numeric person
numbers, 18-character identity card numbers), and keeps out spaces, quotes, control and
non-ASCII characters, which no identifier needs and which make logs and queries ambiguous.
"""

_IDENTIFIER = re.compile(IDENTIFIER_FORMAT)


def is_identifier(value: str) -> bool:
    """True for a person number, a transfer/binding/request id or a client name."""
    return bool(_IDENTIFIER.fullmatch(value))


CLEARINGHOUSE: Final = "clearinghouse"
"""The sender name and routing destination of the national clearinghouse."""

_REGION_PREFIX: Final = "region."
_CLIENT_PREFIX: Final = "client."
_MAILBOX_PREFIX: Final = "province."

MAX_ADDRESS_LENGTH: Final = len(_CLIENT_PREFIX) + MAX_IDENTIFIER_LENGTH
ADDRESS_FORMAT: Final = rf"{CLEARINGHOUSE}|region\.{REGION_CODE_FORMAT}|client\.{IDENTIFIER_FORMAT}"
"""``clearinghouse``, ``region.<region code>`` or ``client.<identifier>``."""

_ADDRESS = re.compile(ADDRESS_FORMAT)


def is_address(value: str) -> bool:
    """True for a routing address (a ``reply_to``, an envelope's sender)."""
    return bool(_ADDRESS.fullmatch(value))


SENDER_FORMAT: Final = rf"[A-Za-z0-9._:-]{{1,{MAX_ADDRESS_LENGTH}}}"
"""An envelope's sender: a service's or client's address, or another name of the same
characters (a tool's or a test's). Nothing is routed by it, so only its shape is bounded."""


def region_address(code: str) -> str:
    """The destination name of a region service (also its envelope sender)."""
    return f"{_REGION_PREFIX}{code}"


def mailbox_address(province: str) -> str:
    """The destination name of a province host's mailbox: the one queue on which the
    clearinghouse sends it the operations of all its regions (``province.420000``)."""
    if not is_province_code(province):
        raise ValueError(f"{province!r} is not a province code (6 digits ending 0000)")
    return f"{_MAILBOX_PREFIX}{province}"


def mailbox_of(address: str) -> str:
    """The mailbox a region's address is served through (``region.420100`` ->
    ``province.420000``); any other address is its own."""
    if address.startswith(_REGION_PREFIX):
        return f"{_MAILBOX_PREFIX}{address[len(_REGION_PREFIX) : len(_REGION_PREFIX) + 2]}0000"
    return address


def mailbox_route(address: str) -> tuple[str, str]:
    """Where an operation for ``address`` goes when regions are served through mailboxes,
    and the region to name there: ``region.420100`` -> (``province.420000``, ``420100``);
    any other address -> (itself, ``""``)."""
    if address.startswith(_REGION_PREFIX):
        return mailbox_of(address), address[len(_REGION_PREFIX) :]
    return address, ""


def client_address(name: str) -> str:
    """The destination name of a client (bill submitter) that receives outcomes."""
    return f"{_CLIENT_PREFIX}{name}"


PERSON_NUMBER_IN_TEXT: Final = re.compile(
    rf"(?<![0-9]){REGION_CODE_FORMAT}-[0-9]{{4,}}(?![0-9])|(?<![0-9])[0-9]{{15,}}[0-9Xx]?(?![0-9])"
)
"""Person numbers as they can appear inside free text (a refusal's detail, an error).

Two shapes: a region code, a hyphen and a serial, as gongji's populations number persons
(``420100-000081``); and a run of 15 or more digits, as national person numbers and
identity card numbers are (the last character of the latter may be ``X``). Only digits
bound a match, so a person number inside a longer name is found too (the ledger account
``psn:420100-000081``, an id a client made from one). A shorter, hand-made person
number (``A1`` in a test) is not recognisable in prose: keyed log values are tokenised
whatever their shape, free text only by these shapes.
"""
