"""The thin async shell that runs a sans-I/O core on RabbitMQ.

One loop per service: take a batch of deliveries, apply all their operations in one
SQLite transaction, publish what the core returned (one envelope per destination,
confirmed), and only then acknowledge. A crash anywhere before the ack means the broker
redelivers, and the idempotent core re-sends the same answers.

Steps are pipelined: while the confirms of one batch's answers are outstanding, the
next batch is already applied and committed (up to ``pipeline_depth`` batches await
confirms at once). Each batch is still acknowledged only after its own state change is
committed and its own answers are confirmed, so the guarantee above holds; the broker's
confirm latency no longer stalls the loop, which otherwise bounds throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import AbstractRobustConnection

from broker.inbox import Delivery, Inbox
from broker.publisher import Publisher, PublishError, Unroutable, group_by_address
from broker.topology import Topology, declare_service_queue
from contracts.effects import (
    Anomaly,
    AnyEvent,
    Disagreed,
    Outgoing,
    RegionRegistered,
    Repaired,
    Retried,
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


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r} must be >= 1")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must be >= 0")
    return value


@dataclass(frozen=True, slots=True)
class ShellTuning:
    """Batching and pipelining of a shell; ``from_env`` reads ``GONGJI_SHELL_*``."""

    max_batch_messages: int = 256
    """Deliveries applied in one transaction at most."""
    pipeline_depth: int = 2
    """Batches whose answers may await confirms at once. Two overlap one batch's confirms
    with the next batch's transaction; more made smaller batches (more messages, more
    CPU per transfer) without more throughput on a 2-core machine."""
    prefetch: int = 2048
    """Unacknowledged deliveries the broker may push (covers the whole pipeline)."""
    tick_ms: float = 250.0
    """How often timers run (holds expire, silent regions time out, retries): each tick is
    a transaction, so an idle service should not tick much faster than its deadlines need
    (seconds); 32 idle regions ticking every 50 ms cost a quarter of a core here."""
    linger_ms: float = 5.0
    """After a batch's first delivery, how long to wait for more (unless the batch is
    full): fewer, fuller envelopes downstream for a few ms of latency per hop. Per-message
    costs (client library and broker) dominate this system, so this is the main lever."""

    @classmethod
    def from_env(cls, max_batch_messages: int | None = None) -> ShellTuning:
        """Defaults, overridden by ``GONGJI_SHELL_MAX_BATCH`` (and ``_PIPELINE_DEPTH``,
        ``_PREFETCH``, ``_LINGER_MS``, ``_TICK_MS``)."""
        default = cls()
        return cls(
            max_batch_messages=_env_int(
                "GONGJI_SHELL_MAX_BATCH", max_batch_messages or default.max_batch_messages
            ),
            pipeline_depth=_env_int("GONGJI_SHELL_PIPELINE_DEPTH", default.pipeline_depth),
            prefetch=_env_int("GONGJI_SHELL_PREFETCH", default.prefetch),
            linger_ms=_env_float("GONGJI_SHELL_LINGER_MS", default.linger_ms),
            tick_ms=_env_float("GONGJI_SHELL_TICK_MS", default.tick_ms),
        )


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
        tick_interval_s: float | None = None,
        max_batch_messages: int | None = None,
        clock: Callable[[], float] = time.time,
        on_start: Callable[[int], list[Outgoing]] | None = None,
        tuning: ShellTuning | None = None,
    ) -> None:
        self.service = service
        self.address = address
        self.core = core
        self.db = db
        self.connection = connection
        self.topology = topology
        self.tuning = tuning or ShellTuning.from_env(max_batch_messages)
        self.tick_interval_s = (
            tick_interval_s if tick_interval_s is not None else self.tuning.tick_ms / 1000
        )
        self.max_batch_messages = self.tuning.max_batch_messages
        self.clock = clock
        self.on_start = on_start
        self.metrics = ServiceMetrics(service)
        self.log = get_logger(service=service)
        self.ready = asyncio.Event()
        self._inbox: Inbox | None = None
        self._publisher: Publisher | None = None
        self._declared: set[str] = set()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._window = asyncio.Semaphore(self.tuning.pipeline_depth)
        # Completed when the latest batch's deliveries are settled: batches settle in
        # delivery order, so one multiple-ack per batch never settles an earlier one's.
        self._last_settled: asyncio.Future[None] | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and apply until ``stop`` is set; then close cleanly (unacked go back)."""
        self._publisher = await Publisher.open(self.connection, self.topology, self.address)
        await self.declare([CLEARINGHOUSE])
        self._inbox = await Inbox.open(
            self.connection,
            self.topology,
            self.address,
            prefetch=self.tuning.prefetch,
            on_poison=self._on_poison,
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
                if self._failure is not None:
                    # A publishing task failed unexpectedly: stop, as a failed step did
                    # before steps were pipelined (unacked deliveries go back).
                    raise self._failure
                wait = max(0.0, next_tick - self.clock())
                batch = await self._next_batch(wait, stop)
                tick = self.clock() >= next_tick
                if tick:
                    next_tick = self.clock() + self.tick_interval_s
                if batch or tick:
                    await self._step(batch, tick)
        finally:
            # Let outstanding confirms settle (bounded) so their batches are acked;
            # whatever is not acked goes back to the queue when the inbox closes.
            if self._in_flight:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10.0):
                        await asyncio.gather(*self._in_flight, return_exceptions=True)
                for task in list(self._in_flight):
                    task.cancel()
            await self._inbox.close()
            await self._publisher.close()
            self.log.info("service_stopped", address=self.address)

    async def _next_batch(self, wait: float, stop: asyncio.Event) -> list[Delivery]:
        assert self._inbox is not None
        if stop.is_set():
            return []
        batch = await self._inbox.next_batch(self.max_batch_messages, timeout=wait)
        room = self.max_batch_messages - len(batch)
        if batch and room > 0 and self.tuning.linger_ms > 0:
            await asyncio.sleep(self.tuning.linger_ms / 1000)
            batch += await self._inbox.next_batch(room, timeout=0)
        return batch

    async def _step(self, batch: list[Delivery], tick: bool) -> None:
        """Apply a batch (and the timers) in one transaction, then hand its publishing
        and acking to a task: the next batch need not wait for these confirms."""
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
        # Committed: the events happened, whatever becomes of the answers.
        self._observe(events)
        registered = [region_address(e.region) for e in events if isinstance(e, RegionRegistered)]
        if registered:
            # Queues of newly registered regions exist before anything (of this step or a
            # later one) is sent to them, so this is awaited here, not in the task.
            try:
                await self.declare(registered)
            except Exception:
                self.log.exception("declare_failed_requeueing", messages=len(done))
                for delivery in done:
                    await self._inbox.retry_later(delivery)
                return
        if not outgoing and not done:
            return
        await self._window.acquire()
        loop = asyncio.get_running_loop()
        previous, self._last_settled = self._last_settled, loop.create_future()
        task = loop.create_task(
            self._publish_then_ack(outgoing, done, previous, self._last_settled)
        )
        self._in_flight.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def _publish_then_ack(
        self,
        outgoing: list[Outgoing],
        done: list[Delivery],
        previous: asyncio.Future[None] | None,
        settled: asyncio.Future[None],
    ) -> None:
        assert self._inbox is not None
        try:
            try:
                await self._publish(outgoing)
            except PublishError:
                # State is committed but answers were not sent: redelivery re-sends them.
                self.log.exception("publish_failed_requeueing", messages=len(done))
                for delivery in done:
                    await self._inbox.retry_later(delivery)
                return
            if previous is not None:
                await previous
            await self._inbox.ack_through(done)
        finally:
            if not settled.done():
                settled.set_result(None)
            self._window.release()

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
        publisher = self._publisher

        async def to_client(address: str, ops: list[Operation]) -> None:
            try:
                await publisher.publish({address: ops})
            except Unroutable:
                # The submitter is gone; its outcome stays recorded here. Not worth a retry loop.
                self.log.warning("client_gone", address=address, operations=len(ops))

        # Every envelope of the step goes out at once; their confirms are awaited together.
        sends = [to_client(a, ops) for a, ops in to_clients.items()]
        if to_services:
            sends.append(publisher.publish(to_services))
        for result in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
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
            elif isinstance(event, Retried):
                self.metrics.retried(event.step, event.region)
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
