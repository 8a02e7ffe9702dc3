"""In-process delivery between cores, with no broker: unit tests and the simulator's base.

It holds a clearinghouse core and region cores over their stores and carries every
``Outgoing`` to its destination in FIFO order, one transaction per operation; the events
each core returns are kept by its address, in order, for the tests to look at.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import ClearinghouseStore
from contracts.effects import AnyEvent, Effects, Outgoing
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import BillOutcome, Operation
from regions.core import RegionCore
from regions.store import RegionStore


class Loopback:
    """A clearinghouse and regions wired together in memory."""

    def __init__(self, regions: Iterable[str], settings: CoordinatorSettings | None = None) -> None:
        self.clearinghouse = ClearinghouseCore(ClearinghouseStore.open(":memory:"), settings)
        self.regions = {code: RegionCore(code, RegionStore.open(":memory:")) for code in regions}
        self.queue: deque[Outgoing] = deque()
        self.outcomes: dict[str, list[BillOutcome]] = {}
        self.replies: list[Operation] = []
        """Other answers to clients (binding outcomes, window reports)."""
        self.events: dict[str, list[AnyEvent]] = {CLEARINGHOUSE: []}
        """Address -> the events its core returned so far (a test may clear them)."""
        for code in self.regions:
            self.events[region_address(code)] = []
        self.now_ms = 0

    def send(self, address: str, op: Operation) -> None:
        self.queue.append(Outgoing(address, op))

    def deliver_all(self, limit: int = 100_000) -> None:
        """Deliver until nothing is left in flight (or ``limit`` deliveries)."""
        for _ in range(limit):
            if not self.queue:
                return
            self._deliver(self.queue.popleft())
        raise RuntimeError("messages still in flight after the delivery limit")

    def take(self, address: str, effects: Effects) -> None:
        """What a core at ``address`` returned: its answers in flight, its events kept."""
        self.queue.extend(effects.outgoing)
        self.events[address] += effects.events

    def _deliver(self, item: Outgoing) -> None:
        if item.address == CLEARINGHOUSE:
            core = self.clearinghouse
            with core.store.db.transaction():
                effects = core.handle(item.op, self.now_ms)
            self.take(CLEARINGHOUSE, effects)
            return
        for code, region in self.regions.items():
            if item.address == region_address(code):
                with region.store.db.transaction():
                    effects = region.handle(item.op, self.now_ms)
                self.take(item.address, effects)
                return
        if isinstance(item.op, BillOutcome):
            self.outcomes.setdefault(item.op.transfer_id, []).append(item.op)
            return
        if item.address.startswith("client."):
            self.replies.append(item.op)
            return
        raise LookupError(f"no destination {item.address}")

    def advance(self, ms: int) -> None:
        """Let time pass and run every core's timers."""
        self.now_ms += ms
        with self.clearinghouse.store.db.transaction():
            effects = self.clearinghouse.tick(self.now_ms)
        self.take(CLEARINGHOUSE, effects)
        for code, region in self.regions.items():
            with region.store.db.transaction():
                effects = region.tick(self.now_ms)
            self.take(region_address(code), effects)
