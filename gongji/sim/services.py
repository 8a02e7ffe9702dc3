"""The nodes at work: each consumer's batches, the services' timers, confirms and crashes.

A region or the clearinghouse is driven by the services' own step engine
(``broker.engine.StepEngine``, which the RabbitMQ shell drives too): the node takes a
batch of messages from its queue, the engine applies them in one transaction, the node
publishes what the engine grouped by destination, and the publish's confirm comes back
later, while the next batch may already be applied (the engine's pipelining). Only the
settlements the engine then returns ack, requeue or dead-letter messages, and the
broker checks them.

A crash discards the core object and everything the node held in memory; the database
object stays, holding exactly what was committed, and a new core is built over it (the
clearinghouse then runs ``resume``, as its service does on start).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from broker.engine import Inbound, SimulatedCrash, Step
from gongji.sim import cores
from gongji.sim.broker import COMMITTED, Message, SimBroker
from gongji.sim.node import Node
from gongji.sim.run import Part, Run
from gongji.sim.scheduler import CONFIRM, KILL, RESTART, STEP, TICK

# Crash points within one step: hooks of the step engine's life.
MID_TRANSACTION = "mid-transaction"
AFTER_COMMIT = "after commit, before publish"
AFTER_PUBLISH = "after publish, before confirm"
BEFORE_ACK = "after confirm, before ack"
_STEP_CRASHES = (MID_TRANSACTION, AFTER_COMMIT, AFTER_PUBLISH, BEFORE_ACK)


def _crash() -> None:
    raise SimulatedCrash


class Services(Part):
    """Steps every node's queue; runs, ticks, crashes and restarts the services."""

    def __init__(
        self,
        run: Run,
        broker: SimBroker,
        builder: cores.CoreBuilder,
        receive: Callable[[Node, list[Message]], None],
        dirty: set[str],
    ) -> None:
        super().__init__(run)
        self.clearinghouse = run.network.clearinghouse
        self.broker = broker
        self.builder = builder
        self.receive = receive
        """Where an outside party's batch goes (it has no core)."""
        self.dirty = dirty
        """Transfers a committed step touched since the last check."""

    # --- a consumer's batch ---

    def step(self, node: Node) -> None:
        """The node takes the ready head of its queue, up to a batch, and applies it."""
        node.scheduled = False
        if not node.up or node.partitioned:
            return
        engine = node.engine
        queue = node.queue
        now = self.clock.now
        if engine is not None and not engine.room():
            return  # woken when a confirm settles a step
        batch: list[Message] = []
        limit = self.config.max_batch
        while queue and len(batch) < limit and queue[0].ready_ms <= now:
            batch.append(queue.popleft())
        if batch and self.faults.active and self.faults.rates.loss:
            batch = self.broker.lose(node, batch)
        busy = 1
        if batch:
            if node.db is None and not node.hosted:
                self.receive(node, batch)
            else:
                busy += sum(len(m.ops) for m in batch) // self.config.ops_per_ms
                if node.kills_left:
                    # A crash loop kills the service just after it started consuming
                    # again, its prefetch full (as a kill 0.5 s after the service answers
                    # does).
                    node.kills_left -= 1
                    self.clock.at(now + self.rng.randint(0, 5), KILL, node, node.epoch)
                self.broker.deliver(node, batch)
                self._apply(node, batch)
        if queue and node.up and not node.partitioned:
            node.scheduled = True
            self.clock.at(max(now + busy, queue[0].ready_ms), STEP, node, node.epoch)

    def _crash_point(self) -> str | None:
        faults = self.faults
        if faults.active and faults.rates.crash and self.rng.random() < faults.rates.crash:
            return self.rng.choice(_STEP_CRASHES)
        return None

    def _apply(self, node: Node, batch: list[Message]) -> None:
        """One engine step over a batch: the engine's transaction, then publishing."""
        now = self.clock.now
        self.stats.steps += 1
        crash = self._crash_point()
        trace = self.trace
        address = node.address
        for msg in batch:
            trace.delivered(now, address, msg.text)
        inbound = [
            Inbound(msg, str(msg.tag), msg.ops, msg.sender, msg.destinations) for msg in batch
        ]
        step = self._run_step(node, inbound, False, crash)
        if step is None:
            return
        if self.watching:
            for msg in batch:
                again = " (redelivered)" if msg.redelivered else ""
                trace.note(now, msg.ops, f"{address} applied{again}")
        self._after_step(node, step, crash)

    def tick(self, node: Node) -> None:
        """A service's timers: a step without deliveries, then the next tick."""
        engine = node.engine
        assert engine is not None
        if engine.room():
            self.stats.ticks += 1
            crash = self._crash_point()
            step = self._run_step(node, [], True, crash)
            if step is None:
                return
            self._after_step(node, step, crash)
        # (A service whose pipeline is full ticks again later, as the shell does.)
        self.clock.at(self.clock.now + node.tick_ms, TICK, node, node.epoch)

    def _run_step(
        self, node: Node, inbound: list[Inbound[Message]], tick: bool, crash: str | None
    ) -> Step[Message] | None:
        """The engine's step; None when the node died in it."""
        engine = node.engine
        assert engine is not None
        now = self.clock.now
        hook = _crash if crash is MID_TRANSACTION else None
        started = perf_counter()
        try:
            step = engine.step(inbound, now, tick, crash=hook)
        except Exception as error:  # a core's timer raised: report it, keep ticking
            self.stats.core_errors += 1
            self.checker.anomaly(
                node.address, "", f"step raised {type(error).__name__}: {error}", now
            )
            self.broker.requeue(node, [i.token for i in inbound])
            return None
        self.stats.core_seconds += perf_counter() - started
        self.broker.settle(node, step.settle_now)
        if step.crashed:
            self.crash_during(node, crash)
            return None
        cores.report_events(self.checker, node, step.events, now)
        self.stats.deliveries += len(step.done)
        if node.hosted:
            self.stats.mailbox_deliveries += len(step.done)
        dirty = self.dirty
        for item in step.done:
            msg = item.token
            if msg.hostile:
                self.checker.fail(
                    "forgeries have no effect",
                    f"{node.address} applied a forged message from {msg.sender}: {msg.text[:120]}",
                    str(getattr(msg.ops[0], "transfer_id", "")),
                    now,
                )
            msg.phase = COMMITTED
            msg.step = step.seq
            self.stats.operations += len(msg.ops)
            for op in msg.ops:
                tid = getattr(op, "transfer_id", None)
                if tid is not None:
                    dirty.add(tid)
        return step

    def _after_step(self, node: Node, step: Step[Message], crash: str | None) -> None:
        """Publish a committed step's answers; its confirm comes back a little later."""
        if crash is AFTER_COMMIT:
            self.crash_during(node, crash)
            return
        if not step.needs_publish:
            return
        faults = self.faults
        if faults.active and faults.rates.nack and self.rng.random() < faults.rates.nack:
            faults.record("nack", node.address)
            ok = False  # refused by the broker: nothing of it was routed
        else:
            ok = self.broker.publish_grouped(node, step.sends, step.routes)
        if crash is AFTER_PUBLISH:
            self.crash_during(node, crash)
            return
        lo, hi = self.config.confirm_ms
        when = self.clock.now + self.rng.randint(lo, hi)
        self.clock.at(when, CONFIRM, node, (node.epoch, step, ok, crash is BEFORE_ACK))

    def confirm(
        self, node: Node, epoch: int, step: Step[Message], ok: bool, crash_before_ack: bool
    ) -> None:
        """The publish's confirm (or failure) reaches the node: the engine settles."""
        if epoch != node.epoch or not node.up:
            return  # the node died meanwhile: its unacked messages went back
        engine = node.engine
        assert engine is not None
        node.confirmed[step.seq] = ok
        settlements = engine.published(step, ok)
        if crash_before_ack:
            self.crash_during(node, BEFORE_ACK)
            return
        self.broker.settle(node, settlements)
        if node.queue and engine.room():
            self.broker.wake(node, node.queue[0].ready_ms)

    # --- crashes and restarts ---

    def crash_during(self, node: Node, point: str | None) -> None:
        """The node dies: memory gone, unacked messages back to the queue, restart later."""
        self.faults.record("crash", f"{node.address} {point}")
        self.kill(node, self.rng.randint(50, 2_000))

    def kill(self, node: Node, restart_in_ms: int) -> None:
        """The service's process dies; it restarts ``restart_in_ms`` later. A province
        host's process is its mailbox and its regions: all die, and restart, together."""
        group = node.group()
        for member in group:
            self.broker.consumer_lost(member)
            member.up = False
            member.core = None
            member.engine = None
            member.scheduled = False
            member.epoch += 1
        process = group[0]
        self.clock.at(self.clock.now + restart_in_ms, RESTART, process, process.epoch)

    def restart(self, node: Node) -> None:
        """A new core over what the database committed, as the service starts (a host:
        its regions, then its mailbox over their cores)."""
        for region_node in node.hosted:
            if not region_node.up:
                self._start(region_node)
        self._start(node)

    def _start(self, node: Node) -> None:
        self.builder.build(node)
        node.up = True
        node.epoch += 1
        now = self.clock.now
        self.trace.fault(now, "restart", node.address)
        engine = node.engine
        assert engine is not None
        if node is self.clearinghouse:
            # What the shell does on start, before it consumes: resume, publish, confirm.
            step = cores.resume(node, now)
            cores.report_events(self.checker, node, step.events, now)
            if not self.broker.publish_grouped(node, step.sends, step.routes):
                self.crash_during(node, "publishing its resume")  # the shell's start fails
                return
            engine.published(step, True)
        elif node.code:
            self.checker.books(node.code, now)
        if node.tick_ms:
            self.clock.at(now + node.tick_ms, TICK, node, node.epoch)
        if node.queue:
            self.broker.wake(node, node.queue[0].ready_ms)
