"""The simulated broker: queues, unacked messages, settlements, the delivery limit.

It keeps every published message until it is acked: a crash, a lost delivery or a lost
ack means the message comes again, and a message returned more often than the queues'
delivery limit is dead-lettered, as by RabbitMQ. It checks what it is asked to do: a
message acked before its step committed or before its answers were confirmed is a
violation, and so is a healthy message dead-lettered or refused by its routing check
(the broker users' topic permissions). The per-message faults (delay, expiry, reorder,
loss, duplicate) happen here.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.engine import Ack, DeadLetter, Requeue, Settlement
from broker.users import may_publish
from contracts.effects import Outgoing
from contracts.operations import Operation
from contracts.participants import Participant
from contracts.permissions import REFUSALS
from gongji.sim.node import Node
from gongji.sim.run import Part, Run
from gongji.sim.scheduler import RELEASE, STEP
from gongji.sim.trace import encode

# What the broker knows of a delivered message (``Message.phase``).
DELIVERED = 0  # handed to the consumer, its step not committed
COMMITTED = 1  # its step committed; ``Message.step`` says which


class Message:
    """One message in a queue: the operations of one envelope."""

    __slots__ = (
        "destinations",
        "hostile",
        "ops",
        "phase",
        "ready_ms",
        "redelivered",
        "returns",
        "sender",
        "step",
        "tag",
        "text",
    )

    def __init__(
        self,
        ops: tuple[Operation, ...],
        ready_ms: int,
        text: str,
        sender: Participant | None = None,
        hostile: bool = False,
        destinations: tuple[str, ...] = (),
    ) -> None:
        self.ops = ops
        self.destinations = destinations
        """On a province mailbox: the region of each operation."""
        self.ready_ms = ready_ms
        self.text = text
        self.sender = sender
        """Who published it, as the broker knows (its user_id)."""
        self.hostile = hostile
        """Forged by the ``hostile`` fault: must be refused, never applied."""
        self.redelivered = False
        self.returns = 0
        """Times the message went back to its queue (the quorum delivery count)."""
        self.tag = 0
        """Delivery tag while unacknowledged (per node, increasing)."""
        self.phase = DELIVERED
        self.step = 0

    def again(self, ready_ms: int) -> Message:
        copy = Message(self.ops, ready_ms, self.text, self.sender, self.hostile, self.destinations)
        copy.redelivered = True
        copy.returns = self.returns + 1
        return copy


class SimBroker(Part):
    """Routes, queues, delivers and settles the network's messages."""

    def __init__(self, run: Run, hold_timeout_ms: int) -> None:
        super().__init__(run)
        network = run.network
        self.nodes = network.nodes
        self.client = network.client
        self.hold_timeout_ms = hold_timeout_ms
        """How late the ``expiry`` fault makes a message (about the hold timeout)."""

    # --- publishing ---

    def publish(self, source: Node | None, outgoing: list[Outgoing]) -> bool:
        """One message per destination, operations in the order the core returned them.
        False if the publish failed (its source is cut from the broker)."""
        if not outgoing:
            return True
        grouped: dict[str, list[Operation]] = {}
        for item in outgoing:
            ops = grouped.get(item.address)
            if ops is None:
                grouped[item.address] = [item.op]
            else:
                ops.append(item.op)
        return self.publish_grouped(source, grouped)

    def publish_grouped(
        self,
        source: Node | None,
        sends: dict[str, list[Operation]],
        routes: dict[str, list[str]] | None = None,
    ) -> bool:
        """Publish operations already grouped by destination (``None``: the submitter);
        ``routes``: a mailbox's operations' regions (``Step.routes``)."""
        if not sends:
            return True
        now = self.clock.now
        if source is not None and source.partitioned:
            # The shell's publish fails; state is committed, the answers are not sent.
            self.stats.publish_dropped += 1
            self.trace.fault(now, "publish_dropped", source.address)
            if self.watching:
                lost = [op for ops in sends.values() for op in ops]
                self.trace.note(now, lost, f"{source.address} LOST")
            return False
        sender = (source or self.client).participant
        for address, ops in sends.items():
            destinations = tuple(routes.get(address, ())) if routes else ()
            self.send(address, tuple(ops), sender, destinations=destinations)
        return True

    def send(
        self,
        address: str,
        ops: tuple[Operation, ...],
        sender: Participant | None,
        hostile: bool = False,
        destinations: tuple[str, ...] = (),
    ) -> None:
        """One message from ``sender`` (its broker user; None: the guest) to ``address``."""
        now = self.clock.now
        if sender is not None and not may_publish(sender, address):
            # The broker's topic permissions refuse the routing key.
            self.trace.fault(now, "routing_refused", f"{sender} -> {address}")
            if hostile:
                self.stats.forgeries_refused += 1
            else:
                self.checker.fail(
                    "genuine messages routed",
                    f"the broker refused {sender}'s message to {address}",
                    str(getattr(ops[0], "transfer_id", "")),
                    now,
                )
            return
        node = self.nodes.get(address)
        if node is None:
            # Unroutable: the broker drops it (the shell logs it). A core sending to an
            # address nobody serves shows up as a stuck transfer.
            self.stats.unroutable += 1
            self.trace.fault(now, "unroutable", address)
            return
        rng = self.rng
        faults = self.faults
        rates = faults.rates
        msg = Message(ops, now, encode(ops), sender, hostile, destinations)
        if self.watching:
            self.trace.note(now, ops, f"-> {address}")
        lo, hi = self.config.latency_ms
        ready = now + lo + int(rng.random() * (hi - lo + 1))
        if faults.active:
            if rates.delay and rng.random() < rates.delay:
                faults.record("delay", address)
                self.hold_back(node, msg, now + rng.randint(10, 3_000), "delayed")
                return
            if rates.expiry and (node.code or node.hosted) and rng.random() < rates.expiry:
                late = self.hold_timeout_ms
                faults.record("expiry", address)
                self.hold_back(node, msg, now + rng.randint(late // 2, late * 3 // 2), "late")
                return
            if rates.reorder and node.queue and rng.random() < rates.reorder:
                faults.record("reorder", address)
                msg.ready_ms = ready
                node.queue.insert(rng.randrange(len(node.queue)), msg)
                if self.watching:
                    self.trace.note(now, ops, f"reordered in {address}")
                self.wake(node, ready)
                return
        # Per-queue FIFO: never ready before the message published ahead of it.
        if ready < node.last_ready:
            ready = node.last_ready
        node.last_ready = ready
        msg.ready_ms = ready
        node.queue.append(msg)
        self.wake(node, ready)

    def hold_back(self, node: Node, msg: Message, until: int, what: str) -> None:
        """The message re-enters its queue at ``until``, behind whatever came meanwhile."""
        if self.watching:
            self.trace.note(self.clock.now, msg.ops, f"{what} until {until} ms for {node.address}")
        self.clock.at(until, RELEASE, node, msg)

    def release(self, node: Node, msg: Message) -> None:
        """A held-back message enters its queue now."""
        now = self.clock.now
        msg.ready_ms = now
        node.queue.append(msg)
        self.wake(node, now)

    def wake(self, node: Node, ready: int) -> None:
        """Schedule the node's next step for when its queue's head is ready."""
        if not node.scheduled and node.up and not node.partitioned:
            node.scheduled = True
            self.clock.at(max(ready, self.clock.now), STEP, node, node.epoch)

    # --- delivering ---

    def deliver(self, node: Node, batch: list[Message]) -> None:
        """The broker hands the batch to the consumer: unacked until settled."""
        for msg in batch:
            node.next_tag += 1
            msg.tag = node.next_tag
            msg.phase = DELIVERED
            node.unacked[msg.tag] = msg

    def lose(self, node: Node, batch: list[Message]) -> list[Message]:
        """The ``loss`` fault: deliveries lost before they were processed come again."""
        kept = []
        rng = self.rng
        faults = self.faults
        for msg in batch:
            if rng.random() < faults.rates.loss:
                faults.record("loss", node.address)
                self.hold_back(
                    node,
                    msg.again(0),
                    self.clock.now + rng.randint(10, 1_000),
                    "lost before ack, redelivered",
                )
            else:
                kept.append(msg)
        return kept

    def consumer_lost(self, node: Node) -> None:
        """The node's consumer died: what it held comes back, and so does what the broker
        had pushed ahead of its batches, each return counting towards the delivery limit."""
        now = self.clock.now
        if self.watching:
            for msg in node.unacked.values():
                self.trace.note(now, msg.ops, f"{node.address} CRASHED")
        for msg in list(node.queue)[: self.config.prefetch]:
            if msg.ready_ms > now:
                break
            msg.returns += 1
            if msg.returns > self.config.delivery_limit:
                node.queue.remove(msg)
                self.dead_letter(node, msg, "delivery_limit")
        self.requeue(node, list(node.unacked.values()))
        node.unacked.clear()

    def requeue(self, node: Node, msgs: Sequence[Message]) -> None:
        """Unacked messages go back to the head of the queue, marked redelivered; one
        returned more often than the delivery limit is dead-lettered by the broker."""
        self.stats.redeliveries += len(msgs)
        for msg in reversed(msgs):
            node.unacked.pop(msg.tag, None)
            msg.returns += 1
            if msg.returns > self.config.delivery_limit:
                self.dead_letter(node, msg, "delivery_limit")
                continue
            msg.redelivered = True
            msg.phase = DELIVERED
            node.queue.appendleft(msg)

    def dead_letter(self, node: Node, msg: Message, reason: str) -> None:
        """A forged message must be refused; any other is healthy, and dead-lettering it
        loses a request."""
        now = self.clock.now
        self.stats.dead_lettered += 1
        self.trace.fault(now, "dead_letter", f"{node.address} {reason}")
        if msg.hostile and reason in REFUSALS:
            self.stats.forgeries_refused += 1
            return
        tids = sorted({str(getattr(op, "transfer_id", "")) for op in msg.ops})
        for tid in tids or [""]:
            self.checker.fail(
                "no healthy message dead-lettered",
                f"{node.address}: a message ({msg.text[:120]}) was dead-lettered: {reason}",
                tid,
                now,
            )

    # --- settling ---

    def settle(self, node: Node, settlements: Sequence[Settlement[Message]]) -> None:
        """The broker carries out the engine's settlements, checking each."""
        for settlement in settlements:
            if isinstance(settlement, Ack):
                self._ack(node, settlement.tokens)
            elif isinstance(settlement, Requeue):
                self.requeue(node, [m for m in settlement.tokens if m.tag in node.unacked])
            elif isinstance(settlement, DeadLetter):
                msg = settlement.token
                if node.unacked.pop(msg.tag, None) is not None:
                    self.dead_letter(node, msg, settlement.reason)

    def _ack(self, node: Node, tokens: Sequence[Message]) -> None:
        """A multiple-ack of the highest tag, as the shell sends it: it settles every
        unacked message delivered before it, so each of those must be safe to ack."""
        if not tokens:
            return
        highest = max(m.tag for m in tokens)
        acked = [msg for tag, msg in node.unacked.items() if tag <= highest]
        for msg in acked:
            del node.unacked[msg.tag]
            self._check_ack(node, msg)
        faults = self.faults
        if faults.active and faults.rates.duplicate:
            for msg in acked:
                if self.rng.random() < faults.rates.duplicate:
                    faults.record("duplicate", node.address)
                    self.hold_back(
                        node,
                        msg.again(0),
                        self.clock.now + self.rng.randint(1, 1_000),
                        "ack lost, redelivered",
                    )

    def _check_ack(self, node: Node, msg: Message) -> None:
        """Ack after commit, and only once the step's answers were confirmed."""
        if msg.phase != COMMITTED:
            problem = "before its step committed"
        elif node.confirmed.get(msg.step) is not True:
            why = "failed" if node.confirmed.get(msg.step) is False else "were not confirmed"
            problem = f"although its step's answers {why}"
        else:
            return
        tids = sorted({str(getattr(op, "transfer_id", "")) for op in msg.ops})
        for tid in tids or [""]:
            self.checker.fail(
                "ack after commit and confirm",
                f"{node.address} acked a message ({msg.text[:120]}) {problem}",
                tid,
                self.clock.now,
            )
