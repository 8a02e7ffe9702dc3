"""The thin async shell that runs a service's step engine on RabbitMQ.

The step itself (one transaction per batch, isolation of a failing delivery, grouping
answers by destination, settling in delivery order) is ``broker.engine.StepEngine``,
the same code the simulator drives. This shell only does the I/O around it: take a
batch from the inbox, declare new queues, publish the step's answers with confirms,
and perform the settlements the engine returns, one after another in their order.

Steps are pipelined: while the confirms of one batch's answers are outstanding, the
next batch is already applied and committed (up to ``pipeline_depth`` batches await
confirms at once). Each batch is still acknowledged only after its own state change is
committed and its own answers are confirmed; the broker's confirm latency no longer
stalls the loop, which otherwise bounds throughput.

Consuming starts only after ``on_start`` (the clearinghouse's resume) has run and its
answers are confirmed, so a restart re-sends its unfinished steps before anything new.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiormq
from aio_pika.abc import AbstractRobustConnection

from broker.engine import (
    HANDLER_FAILED,
    Ack,
    Core,
    DeadLetter,
    Inbound,
    Requeue,
    Settlement,
    Step,
    StepEngine,
    Transactional,
)
from broker.inbox import Delivery, Inbox
from broker.publisher import Publisher, PublishError, Unroutable
from broker.topology import Topology, declare_service_queue
from contracts.effects import (
    Anomaly,
    AnyEvent,
    AtRegion,
    Disagreed,
    Effects,
    Repaired,
    Retried,
    TransferFinished,
    TransferStarted,
    WindowClosed,
)
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Operation
from contracts.permissions import refusal
from telemetry.logs import get_logger
from telemetry.metrics import ServiceMetrics

STOP_POLL_S = 0.25
"""The longest a shell waits for a delivery before it looks at ``stop`` again."""


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
    max_handling_failures: int = 3
    """A delivery that failed in this service's own handling this often is dead-lettered
    (a redelivery after a consumer died does not count; see ``broker.engine``)."""
    linger_ms: float = 5.0
    """After a batch's first delivery, how long to wait for more (unless the batch is
    full): fewer, fuller envelopes downstream for a few ms of latency per hop. Per-message
    costs (client library and broker) dominate this system, so this is the main lever."""
    linger_slice_ms: float = 0.0
    """0: linger ``linger_ms`` whole. Above 0: linger in slices of this length only while
    each slice brings more deliveries, up to ``linger_ms`` in all, so a light load (nothing
    more to wait for) pays one slice per hop and a heavy one fills its batches."""

    @classmethod
    def from_env(cls, max_batch_messages: int | None = None) -> ShellTuning:
        """Defaults, overridden by ``GONGJI_SHELL_MAX_BATCH`` (and ``_PIPELINE_DEPTH``,
        ``_PREFETCH``, ``_MAX_FAILURES``, ``_LINGER_MS``, ``_LINGER_SLICE_MS``, ``_TICK_MS``)."""
        default = cls()
        return cls(
            max_batch_messages=_env_int(
                "GONGJI_SHELL_MAX_BATCH", max_batch_messages or default.max_batch_messages
            ),
            pipeline_depth=_env_int("GONGJI_SHELL_PIPELINE_DEPTH", default.pipeline_depth),
            prefetch=_env_int("GONGJI_SHELL_PREFETCH", default.prefetch),
            max_handling_failures=_env_int(
                "GONGJI_SHELL_MAX_FAILURES", default.max_handling_failures
            ),
            linger_ms=_env_float("GONGJI_SHELL_LINGER_MS", default.linger_ms),
            linger_slice_ms=_env_float("GONGJI_SHELL_LINGER_SLICE_MS", default.linger_slice_ms),
            tick_ms=_env_float("GONGJI_SHELL_TICK_MS", default.tick_ms),
        )


class ServiceShell:
    """Runs one core's step engine against one queue until stopped."""

    def __init__(
        self,
        *,
        service: str,
        address: str,
        core: Core,
        db: Transactional,
        connection: AbstractRobustConnection,
        topology: Topology,
        tick_interval_s: float | None = None,
        max_batch_messages: int | None = None,
        clock: Callable[[], float] = time.time,
        on_start: Callable[[int], Effects] | None = None,
        tuning: ShellTuning | None = None,
        mailbox: Callable[[str], tuple[str, str]] | None = None,
        hosted: Mapping[str, Core] | None = None,
    ) -> None:
        """``mailbox`` and ``hosted``: see ``broker.engine.StepEngine``."""
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
        self.engine: StepEngine[Delivery] = StepEngine(
            core,
            db,
            pipeline_depth=self.tuning.pipeline_depth,
            max_handling_failures=self.tuning.max_handling_failures,
            authorize=refusal,
            mailbox=mailbox,
            hosted=hosted,
        )
        self.engine.on_failure = self._delivery_failed
        self.ready = asyncio.Event()
        self._inbox: Inbox | None = None
        self._publisher: Publisher | None = None
        self._declared: set[str] = set()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._region_observers: dict[str, tuple[ServiceMetrics, Any]] = {}
        self._failure: BaseException | None = None
        self._room = asyncio.Event()
        # Settlements are performed by one task, strictly in the order the engine
        # returned them: a multiple-ack must never overtake an earlier requeue.
        self._settlements: asyncio.Queue[list[Settlement[Delivery]] | None] = asyncio.Queue()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and apply until ``stop`` is set; then close cleanly (unacked go back)."""
        self._publisher = await Publisher.open(self.connection, self.topology, self.address)
        settler = asyncio.get_running_loop().create_task(self._settle_in_order())
        try:
            if self.address == CLEARINGHOUSE:
                await self.declare([CLEARINGHOUSE])
            else:
                # Only the clearinghouse may declare (and so delete) its queue.
                await self._wait_for_queue(CLEARINGHOUSE)
            if self.on_start is not None:
                # Before consuming: a restarted clearinghouse re-sends (with fresh
                # deadlines) what it had under way before it takes anything new.
                step = self.engine.start(self.now_ms(), self.on_start)
                self._observe(step.events)
                if step.declare:
                    await self.declare(step.declare)
                await self._publish(step.sends, step.routes)
                self._settlements.put_nowait(self.engine.published(step, True))
            self._inbox = await Inbox.open(
                self.connection,
                self.topology,
                self.address,
                prefetch=self.tuning.prefetch,
                on_poison=self._on_poison,
            )
            self.ready.set()
            self.log.info("service_started", address=self.address)
            await self._loop(stop)
        finally:
            # Let outstanding confirms settle (bounded) so their batches are acked;
            # whatever is not acked goes back to the queue when the inbox closes.
            if self._in_flight:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10.0):
                        await asyncio.gather(*self._in_flight, return_exceptions=True)
                for task in list(self._in_flight):
                    task.cancel()
            self._settlements.put_nowait(None)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10.0):
                    await asyncio.shield(settler)
            settler.cancel()
            if self._inbox is not None:
                await self._inbox.close()
            await self._publisher.close()
            self.log.info("service_stopped", address=self.address)

    async def _loop(self, stop: asyncio.Event) -> None:
        next_tick = self.clock()
        while not stop.is_set():
            if self._failure is not None:
                # A publishing task failed unexpectedly: stop (unacked deliveries go back).
                raise self._failure
            while not self.engine.room():
                self._room.clear()
                await self._room.wait()
            # Bounded, so a shell that ticks rarely (a province host's region beside its
            # mailbox) still sees ``stop`` soon.
            wait = min(max(0.0, next_tick - self.clock()), STOP_POLL_S)
            batch = await self._next_batch(wait, stop)
            tick = self.clock() >= next_tick
            if tick:
                next_tick = self.clock() + self.tick_interval_s
            if batch or tick:
                await self._step(batch, tick)

    async def _next_batch(self, wait: float, stop: asyncio.Event) -> list[Delivery]:
        assert self._inbox is not None
        if stop.is_set():
            return []
        batch = await self._inbox.next_batch(self.max_batch_messages, timeout=wait)
        if batch and self.tuning.linger_ms > 0:
            await self._linger(batch)
        return batch

    async def _linger(self, batch: list[Delivery]) -> None:
        """Add to ``batch`` what arrives while lingering (see ``ShellTuning.linger_ms``)."""
        assert self._inbox is not None
        tuning = self.tuning
        slice_ms = tuning.linger_slice_ms if tuning.linger_slice_ms > 0 else tuning.linger_ms
        deadline = time.monotonic() + tuning.linger_ms / 1000
        while (room := self.max_batch_messages - len(batch)) > 0:
            await asyncio.sleep(slice_ms / 1000)
            more = await self._inbox.next_batch(room, timeout=0)
            batch += more
            if not more or tuning.linger_slice_ms <= 0 or time.monotonic() >= deadline:
                return

    async def _step(self, batch: list[Delivery], tick: bool) -> None:
        """One engine step; its publishing and acking go to a task, so the next batch
        need not wait for these confirms."""
        inbound = [
            Inbound(
                d, d.envelope.message_id, d.envelope.operations, d.sender, d.envelope.destinations
            )
            for d in batch
        ]
        step = self.engine.step(inbound, self.now_ms(), tick)
        if step.settle_now:
            self._settlements.put_nowait(step.settle_now)
        for refused, reason in step.refused:
            self._refused(refused, reason)
        if batch:
            self.metrics.messages_in(len(batch), step.operations)
            self.metrics.batch(step.operations)
        # Committed: the events happened, whatever becomes of the answers.
        self._observe(step.events)
        if not step.needs_publish:
            return
        if step.declare:
            # Queues of newly registered regions exist before anything (of this step or
            # a later one) is sent to them, so this is awaited here, not in the task.
            try:
                await self.declare(step.declare)
            except Exception:
                self.log.exception("declare_failed_requeueing", messages=len(step.done))
                self._published(step, ok=False)
                return
        task = asyncio.get_running_loop().create_task(self._publish_step(step))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _publish_step(self, step: Step[Delivery]) -> None:
        ok = False
        try:
            await self._publish(step.sends, step.routes)
            ok = True
        except PublishError:
            # State is committed but answers were not sent: redelivery re-sends them.
            self.log.exception("publish_failed_requeueing", messages=len(step.done))
        except Exception as error:
            self.log.exception("publish_crashed", messages=len(step.done))
            if self._failure is None:
                self._failure = error
        finally:
            self._published(step, ok)

    def _published(self, step: Step[Delivery], ok: bool) -> None:
        self._settlements.put_nowait(self.engine.published(step, ok))
        self._room.set()

    async def _settle_in_order(self) -> None:
        """Perform the engine's settlements, one list after another, in order."""
        while True:
            settlements = await self._settlements.get()
            if settlements is None:
                return
            if self._inbox is None:
                continue  # nothing consumed yet (the start step has no deliveries)
            for settlement in settlements:
                try:
                    await self._settle(self._inbox, settlement)
                    if isinstance(settlement, DeadLetter) and settlement.reason == HANDLER_FAILED:
                        self.metrics.dead_letter(HANDLER_FAILED)
                except Exception:
                    # Unsettled: the broker redelivers it when this channel closes.
                    self.log.exception("settle_failed", kind=type(settlement).__name__)

    @staticmethod
    async def _settle(inbox: Inbox, settlement: Settlement[Delivery]) -> None:
        if isinstance(settlement, Ack):
            await inbox.ack_through(settlement.tokens)
        elif isinstance(settlement, Requeue):
            for delivery in settlement.tokens:
                await inbox.retry_later(delivery)
        elif isinstance(settlement, DeadLetter):
            await inbox.reject(settlement.token, settlement.reason)

    def _refused(self, inbound: Inbound[Delivery], reason: str) -> None:
        """A delivery its sender may not send: counted and logged (no personal data: the
        operations' tags only), dead-lettered by the settler."""
        self.metrics.rejected(reason)
        self.log.warning(
            "message_refused",
            reason=reason,
            sender=str(inbound.sender) if inbound.sender else "unknown",
            user_id=inbound.token.message.user_id or "",
            message_id=inbound.message_id,
            operations=sorted({op.TAG for op in inbound.operations}),
        )

    def _delivery_failed(self, inbound: Inbound[Delivery], error: BaseException) -> None:
        self.log.error(
            "message_failed",
            message_id=inbound.message_id,
            error=f"{type(error).__name__}: {error}",
        )

    async def _publish(
        self, sends: dict[str, list[Operation]], routes: dict[str, list[str]]
    ) -> None:
        if not sends:
            return
        assert self._publisher is not None
        to_clients = {a: ops for a, ops in sends.items() if a.startswith("client.")}
        to_services = {a: ops for a, ops in sends.items() if a not in to_clients}
        publisher = self._publisher

        async def to_client(address: str, ops: list[Operation]) -> None:
            try:
                await publisher.publish({address: ops})
            except Unroutable:
                # The submitter is gone; its outcome stays recorded here. Not worth a retry loop.
                self.log.warning("client_gone", address=address, operations=len(ops))

        # Every envelope of the step goes out at once; their confirms are awaited together.
        publishes = [to_client(a, ops) for a, ops in to_clients.items()]
        if to_services:
            publishes.append(publisher.publish(to_services, routes))
        for result in await asyncio.gather(*publishes, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        self.metrics.messages_out(len(sends), sum(len(ops) for ops in sends.values()))

    async def _wait_for_queue(self, address: str, interval_s: float = 0.5) -> None:
        """Wait until ``address``'s queue exists (a passive declare needs no permission
        to configure it), so nothing this service sends there is returned unroutable."""
        name = self.topology.queue_for(address)
        waited = False
        while True:
            channel = await self.connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
                return
            except aiormq.exceptions.ChannelNotFoundEntity:
                if not waited:
                    self.log.info("waiting_for_queue", queue=name)
                    waited = True
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
            await asyncio.sleep(interval_s)

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
            if isinstance(event, AtRegion):
                # A hosted region's event in its host's mailbox: counted as the region's.
                self._observe_one(event.event, *self._region_observer(event.region))
            else:
                self._observe_one(event, self.metrics, self.log)

    def _region_observer(self, code: str) -> tuple[ServiceMetrics, Any]:
        observer = self._region_observers.get(code)
        if observer is None:
            name = f"region-{code}"
            observer = self._region_observers[code] = (
                ServiceMetrics(name),
                get_logger(service=name),
            )
        return observer

    @staticmethod
    def _observe_one(event: AnyEvent, metrics: ServiceMetrics, log: Any) -> None:
        if isinstance(event, TransferStarted):
            metrics.transfer_started(event.flow)
        elif isinstance(event, TransferFinished):
            ServiceShell._finished(event, metrics, log)
        elif isinstance(event, Anomaly):
            log.error("anomaly", transfer_id=event.transfer_id, what=event.what)
        elif isinstance(event, Disagreed):
            metrics.disagreement(event.kind)
            log.warning(
                "disagreement",
                window=event.window,
                region=event.region,
                transfer_id=event.transfer_id,
                kind=event.kind,
            )
        elif isinstance(event, Retried):
            metrics.retried(event.step, event.region)
        elif isinstance(event, Repaired):
            metrics.repaired()
            log.info(
                "repaired",
                window=event.window,
                region=event.region,
                transfer_id=event.transfer_id,
            )
        elif isinstance(event, WindowClosed):
            for region, net in event.positions:
                metrics.clearing_position(region, net)
            log.info("window_closed", window=event.window, regions=len(event.positions))

    @staticmethod
    def _finished(event: TransferFinished, metrics: ServiceMetrics, log: Any) -> None:
        seconds = max(0, event.finished_at_ms - event.started_at_ms) / 1000
        metrics.transfer_finished(event.flow, event.outcome, seconds)
        if event.moved_fen:
            metrics.moved(event.flow, event.moved_fen)
        log.info(
            "transfer_finished",
            transfer_id=event.transfer_id,
            flow=event.flow,
            outcome=event.outcome,
            moved_fen=event.moved_fen,
            detail=event.detail,
        )

    def _on_poison(self, kind: str) -> None:
        self.metrics.rejected(kind)
