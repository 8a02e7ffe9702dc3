"""Identifiers and their validation: region codes, routing names."""

from __future__ import annotations

import re

_REGION_CODE = re.compile(r"^[1-9][0-9]{5}$")


def is_region_code(value: str) -> bool:
    """True for a 6-digit administrative division code such as ``420100``."""
    return bool(_REGION_CODE.match(value))


def check_region_code(value: str) -> str:
    """Return ``value`` if it is a 6-digit region code, else raise ``ValueError``."""
    if not is_region_code(value):
        raise ValueError(f"not a 6-digit region code: {value!r}")
    return value


CLEARINGHOUSE = "clearinghouse"
"""The sender name and routing destination of the national clearinghouse."""


def region_address(code: str) -> str:
    """The destination name of a region service (also its envelope sender)."""
    return f"region.{code}"


def client_address(name: str) -> str:
    """The destination name of a client (bill submitter) that receives outcomes."""
    return f"client.{name}"
