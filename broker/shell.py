"""The thin async shell that runs a sans-I/O core on RabbitMQ.

One loop per service: take a batch of deliveries, apply all their operations in one
SQLite transaction, publish what the core returned (one envelope per destination,
confirmed), and only then acknowledge. A crash anywhere before the ack means the broker
redelivers, and the idempotent core re-sends the same answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from aio_pika.abc import AbstractRobustConnection

from broker.inbox import Delivery, Inbox
from broker.publisher import Publisher, PublishError, Unroutable
from broker.topology import Topology, declare_service_queue
from contracts.effects import (
    Anomaly,
    AnyEvent,
    Disagreed,
    Outgoing,
    RegionRegistered,
    Repaired,
    TransferFinished,
    TransferStarted,
    WindowClosed,
)
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import Operation
from storage.sqlite import Database
from telemetry.logs import get_logger
from telemetry.metrics import ServiceMetrics


class Core(Protocol):
    """What the shell needs of a core (regions.core.RegionCore, TransferCoordinator)."""

    def handle(self, op: Operation, now_ms: int) -> list[Outgoing]: ...
    def tick(self, now_ms: int) -> list[Outgoing]: ...
    def drain_events(self) -> Sequence[AnyEvent]: ...


def group_by_address(outgoing: Sequence[Outgoing]) -> dict[str, list[Operation]]:
    """One list of operations per destination, order kept (one envelope each)."""
    batches: dict[str, list[Operation]] = defaultdict(list)
    for item in outgoing:
        batches[item.address].append(item.op)
    return dict(batches)


class ServiceShell:
    """Runs one core against one queue until stopped."""

    def __init__(
        self,
        *,
        service: str,
        address: str,
        core: Core,
        db: Database,
        connection: AbstractRobustConnection,
        topology: Topology,
        tick_interval_s: float = 0.05,
        max_batch_messages: int = 64,
        clock: Callable[[], float] = time.time,
        on_start: Callable[[int], list[Outgoing]] | None = None,
    ) -> None:
        self.service = service
        self.address = address
        self.core = core
        self.db = db
        self.connection = connection
        self.topology = topology
        self.tick_interval_s = tick_interval_s
        self.max_batch_messages = max_batch_messages
        self.clock = clock
        self.on_start = on_start
        self.metrics = ServiceMetrics(service)
        self.log = get_logger(service=service)
        self.ready = asyncio.Event()
        self._inbox: Inbox | None = None
        self._publisher: Publisher | None = None
        self._declared: set[str] = set()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and apply until ``stop`` is set; then close cleanly (unacked go back)."""
        self._publisher = await Publisher.open(self.connection, self.topology, self.address)
        await self.declare([CLEARINGHOUSE])
        self._inbox = await Inbox.open(
            self.connection, self.topology, self.address, on_poison=self._on_poison
        )
        try:
            if self.on_start is not None:
                with self.db.transaction():
                    outgoing = self.on_start(self.now_ms())
                await self._publish(outgoing)
            self.ready.set()
            self.log.info("service_started", address=self.address)
            next_tick = self.clock()
            while not stop.is_set():
                wait = max(0.0, next_tick - self.clock())
                batch = await self._next_batch(wait, stop)
                tick = self.clock() >= next_tick
                if tick:
                    next_tick = self.clock() + self.tick_interval_s
                if batch or tick:
                    await self._step(batch, tick)
        finally:
            await self._inbox.close()
            await self._publisher.close()
            self.log.info("service_stopped", address=self.address)

    async def _next_batch(self, wait: float, stop: asyncio.Event) -> list[Delivery]:
        assert self._inbox is not None
        if stop.is_set():
            return []
        return await self._inbox.next_batch(self.max_batch_messages, timeout=wait)

    async def _step(self, batch: list[Delivery], tick: bool) -> None:
        """Apply a batch (and the timers) in one transaction, publish, then ack."""
        assert self._inbox is not None
        now = self.now_ms()
        try:
            with self.db.transaction():
                outgoing = self._apply(batch, now)
                if tick:
                    outgoing += self.core.tick(now)
            done = batch
        except Exception:
            self.core.drain_events()  # from the rolled-back attempt: never happened
            self.log.exception("batch_failed_isolating", messages=len(batch))
            outgoing, done = await self._apply_one_by_one(batch, now)
        events = self.core.drain_events()
        try:
            # Queues of newly registered regions exist before anything is sent to them.
            await self.declare(
                [region_address(e.region) for e in events if isinstance(e, RegionRegistered)]
            )
            await self._publish(outgoing)
        except PublishError:
            # State is committed but answers were not sent: redelivery re-sends them.
            self.log.exception("publish_failed_requeueing", messages=len(done))
            for delivery in done:
                await self._inbox.retry_later(delivery)
            self._observe(events)
            return
        await self._inbox.ack(done)
        self._observe(events)

    def _apply(self, batch: Sequence[Delivery], now: int) -> list[Outgoing]:
        outgoing: list[Outgoing] = []
        n_ops = 0
        for delivery in batch:
            for op in delivery.envelope.operations:
                outgoing += self.core.handle(op, now)
                n_ops += 1
        if batch:
            self.metrics.messages_in(len(batch), n_ops)
            self.metrics.batch(n_ops)
        return outgoing

    async def _apply_one_by_one(
        self, batch: list[Delivery], now: int
    ) -> tuple[list[Outgoing], list[Delivery]]:
        """After a failed batch: each delivery alone, so one poison message stays alone."""
        assert self._inbox is not None
        outgoing: list[Outgoing] = []
        done: list[Delivery] = []
        for delivery in batch:
            try:
                with self.db.transaction():
                    outgoing += self._apply([delivery], now)
                done.append(delivery)
            except Exception:
                self.core.drain_events()
                self.log.exception(
                    "message_failed", message_id=delivery.envelope.message_id, retry="requeue"
                )
                # The quorum queue's delivery limit dead-letters it if it keeps failing.
                await self._inbox.retry_later(delivery)
        return outgoing, done

    async def _publish(self, outgoing: Sequence[Outgoing]) -> None:
        if not outgoing:
            return
        assert self._publisher is not None
        batches = group_by_address(outgoing)
        to_clients = {a: ops for a, ops in batches.items() if a.startswith("client.")}
        to_services = {a: ops for a, ops in batches.items() if a not in to_clients}
        if to_services:
            await self._publisher.publish(to_services)
        for address, ops in to_clients.items():
            try:
                await self._publisher.publish({address: ops})
            except Unroutable:
                # The submitter is gone; its outcome stays recorded here. Not worth a retry loop.
                self.log.warning("client_gone", address=address, operations=len(ops))
        self.metrics.messages_out(len(batches), len(outgoing))

    async def declare(self, addresses: Sequence[str]) -> None:
        """Make sure the service queues of these addresses exist (idempotent)."""
        new = [a for a in addresses if a not in self._declared]
        if not new:
            return
        channel = await self.connection.channel()
        try:
            for address in new:
                await declare_service_queue(channel, self.topology, address)
                self._declared.add(address)
        finally:
            await channel.close()

    def _observe(self, events: Sequence[AnyEvent]) -> None:
        for event in events:
            if isinstance(event, TransferStarted):
                self.metrics.transfer_started(event.flow)
            elif isinstance(event, TransferFinished):
                self._finished(event)
            elif isinstance(event, Anomaly):
                self.log.error("anomaly", transfer_id=event.transfer_id, what=event.what)
            elif isinstance(event, Disagreed):
                self.metrics.disagreement(event.kind)
                self.log.warning(
                    "disagreement",
                    window=event.window,
                    region=event.region,
                    transfer_id=event.transfer_id,
                    kind=event.kind,
                )
            elif isinstance(event, Repaired):
                self.metrics.repaired()
                self.log.info(
                    "repaired",
                    window=event.window,
                    region=event.region,
                    transfer_id=event.transfer_id,
                )
            elif isinstance(event, WindowClosed):
                for region, net in event.positions:
                    self.metrics.clearing_position(region, net)
                self.log.info("window_closed", window=event.window, regions=len(event.positions))

    def _finished(self, event: TransferFinished) -> None:
        seconds = max(0, event.finished_at_ms - event.started_at_ms) / 1000
        self.metrics.transfer_finished(event.flow, event.outcome, seconds)
        if event.moved_fen:
            self.metrics.moved(event.flow, event.moved_fen)
        self.log.info(
            "transfer_finished",
            transfer_id=event.transfer_id,
            flow=event.flow,
            outcome=event.outcome,
            moved_fen=event.moved_fen,
            detail=event.detail,
        )

    def _on_poison(self, kind: str) -> None:
        self.metrics.dead_letter(kind)
