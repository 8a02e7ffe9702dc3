"""Who takes part, and how a broker user names a participant.

Every service and client connects to RabbitMQ as its own user, and every publish carries
that user in the AMQP ``user_id`` property, which the broker checks against the
connection's login: a participant cannot claim to be another. The user name says who it
is, inside one namespace::

    <namespace>.clearinghouse          the national clearinghouse
    <namespace>.region.<code>          the service of one pooling region
    <namespace>.province.<code>        a host of several regions of one province
    <namespace>.client.<name>          a submitter (hospital, load generator, demo)
    <namespace>.admin.<name>           an operator (registry, seeding, clearing windows)

A participant's queue is its address (``clearinghouse``, ``region.420100``,
``client.<name>``; an operator receives its answers as ``client.<name>``). A province
host has no queue of its own: it consumes the queues of the regions it speaks for, the
regions whose codes lie in its province (``contracts.identifiers.province_of``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from contracts.identifiers import (
    CLEARINGHOUSE,
    client_address,
    is_province_code,
    is_region_code,
    region_address,
)


class Role(StrEnum):
    CLEARINGHOUSE = "clearinghouse"
    REGION = "region"
    PROVINCE = "province"
    CLIENT = "client"
    ADMIN = "admin"


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
"""A client's or operator's name."""


@dataclass(frozen=True, slots=True)
class Participant:
    """An authenticated sender: its role, and its region code or name."""

    role: Role
    name: str = ""
    """The region code (regions), the client's or operator's name; empty for the hub."""

    def __post_init__(self) -> None:
        if self.role is Role.CLEARINGHOUSE:
            if self.name:
                raise ValueError("the clearinghouse has no name of its own")
        elif self.role is Role.REGION:
            if not is_region_code(self.name):
                raise ValueError(f"not a 6-digit region code: {self.name!r}")
        elif self.role is Role.PROVINCE:
            if not is_province_code(self.name):
                raise ValueError(f"not a province code (6 digits ending 0000): {self.name!r}")
        elif not _NAME.match(self.name):
            raise ValueError(
                f"a {self.role} name is 1-40 of a-z, 0-9, '_' and '-', starting with a "
                f"letter or digit: {self.name!r}"
            )

    @property
    def address(self) -> str:
        """The queue it consumes (and the address answers to it are sent to); a province
        host has none of its own (ValueError)."""
        if self.role is Role.CLEARINGHOUSE:
            return CLEARINGHOUSE
        if self.role is Role.REGION:
            return region_address(self.name)
        if self.role is Role.PROVINCE:
            raise ValueError(f"{self} has no queue of its own: it hosts its regions' queues")
        return client_address(self.name)

    def speaks_for(self, region_code: str) -> bool:
        """Whether this sender may answer as the region ``region_code``: a region for
        itself, a province host for each region of its province, nobody else."""
        if self.role is Role.REGION:
            return region_code == self.name
        if self.role is Role.PROVINCE:
            return region_code[:2] == self.name[:2] and is_region_code(region_code)
        return False

    def user(self, namespace: str) -> str:
        """Its broker user name in ``namespace``."""
        if self.role is Role.CLEARINGHOUSE:
            return f"{namespace}.{CLEARINGHOUSE}"
        return f"{namespace}.{self.role}.{self.name}"

    def __str__(self) -> str:
        return str(self.role) if self.role is Role.CLEARINGHOUSE else f"{self.role}.{self.name}"


HUB = Participant(Role.CLEARINGHOUSE)


def region(code: str) -> Participant:
    return Participant(Role.REGION, code)


def province(code: str) -> Participant:
    """The host of a province's regions (``code`` is the province's, e.g. ``420000``)."""
    return Participant(Role.PROVINCE, code)


def client(name: str) -> Participant:
    return Participant(Role.CLIENT, name)


def admin(name: str) -> Participant:
    return Participant(Role.ADMIN, name)


def participant_of(user: str | None, namespace: str) -> Participant | None:
    """The participant a broker user is in ``namespace``; None for any other user
    (``guest``, a user of another namespace, a malformed name)."""
    if not user:
        return None
    prefix = f"{namespace}."
    if not user.startswith(prefix):
        return None
    rest = user[len(prefix) :]
    if rest == CLEARINGHOUSE:
        return HUB
    role, dot, name = rest.partition(".")
    if not dot:
        return None
    try:
        return Participant(Role(role), name)
    except ValueError:
        return None
