"""What a sans-I/O core returns besides state changes: messages to send and events to observe.

Cores never send or log; their shells (RabbitMQ, simulation) do that with these records.
Every call of a core returns its ``Effects``; nothing is kept in the core for a caller to
collect later, so the effects of a rolled-back attempt are simply dropped with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.operations import Operation


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An operation to deliver to ``address`` (e.g. ``region.420100``, ``clearinghouse``)."""

    address: str
    op: Operation


@dataclass(frozen=True, slots=True)
class TransferStarted:
    """A transfer became in-flight at the service that emits this."""

    transfer_id: str
    flow: str


@dataclass(frozen=True, slots=True)
class TransferFinished:
    """A transfer reached its final outcome at the service that emits this."""

    transfer_id: str
    flow: str
    outcome: str
    """``COMMITTED`` or a reason code value."""
    started_at_ms: int
    finished_at_ms: int
    moved_fen: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something that must not happen under a correct protocol; shells log it loudly."""

    transfer_id: str
    what: str


Event = TransferStarted | TransferFinished | Anomaly


@dataclass(frozen=True, slots=True)
class RegionRegistered:
    """A region joined the registry: its shell makes sure the region's queue exists."""

    region: str


@dataclass(frozen=True, slots=True)
class Disagreed:
    """A region's books and the settlement report differ on a transfer (对账不符)."""

    window: int
    region: str
    transfer_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class Repaired:
    """A disagreement was repaired by driving the region to the recorded decision."""

    window: int
    region: str
    transfer_id: str


@dataclass(frozen=True, slots=True)
class WindowClosed:
    """A clearing window closed with these net positions (region -> fen, summing to zero)."""

    window: int
    positions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Retried:
    """A decided step was sent again because ``region`` had not answered in time."""

    transfer_id: str
    step: str
    """What was sent again: ``commit``, ``credit``, ``abort`` or ``completed`` (by the
    clearinghouse); ``request_aid``, ``request_transfer``, ``binding``,
    ``request_away_settlement`` or ``away_registration`` (by a region, whose ``region`` is
    then the clearinghouse)."""
    region: str


@dataclass(frozen=True, slots=True)
class AtRegion:
    """An event of a hosted region's core, reported by its province host's mailbox, which
    applies several regions' operations in one step: observed as the region's own (its
    metrics keep the region's ``service`` label)."""

    region: str
    event: AnyEvent


AnyEvent = Event | RegionRegistered | Disagreed | Repaired | WindowClosed | Retried | AtRegion


@dataclass(frozen=True, slots=True)
class Effects:
    """What one call of a core produced: operations to send and events to observe.

    Both lists are in the order the core produced them. ``a + b`` is ``a`` then ``b``;
    ``Effects.join`` combines many at once.
    """

    outgoing: list[Outgoing] = field(default_factory=list)
    events: list[AnyEvent] = field(default_factory=list)

    def __add__(self, other: Effects) -> Effects:
        return Effects(self.outgoing + other.outgoing, self.events + other.events)

    @staticmethod
    def join(parts: Iterable[Effects]) -> Effects:
        """The effects of several calls, in order."""
        outgoing: list[Outgoing] = []
        events: list[AnyEvent] = []
        for part in parts:
            outgoing += part.outgoing
            events += part.events
        return Effects(outgoing, events)
