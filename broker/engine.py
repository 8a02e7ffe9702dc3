"""The step engine: how a service turns deliveries into committed state, answers and acks.

Sans-I/O, in the manner of h11: the engine takes deliveries and the time, runs the core
over them in one transaction, and returns what to publish and how to settle each
delivery. It never touches a socket. Two drivers run it: the asyncio shell over aio-pika
(``broker.shell``) and the deterministic simulator over its simulated broker
(``gongji.sim.services``), so the layer that decides when a message is acknowledged is
the same code under simulation as in production.

The rules it keeps:

- Every operation of a delivery must be one its authenticated sender may send
  (``contracts.permissions``); a delivery with one that is not is dead-lettered with
  the reason before any state changes.
- A batch's operations are applied in one transaction; if it fails, each delivery is
  tried alone so one bad delivery cannot hold the others back (isolation). The core
  returns its answers and events with each call (``Effects``): those of an attempt that
  rolled back are dropped with it, so only committed work is reported.
- A delivery that fails in its own handling is requeued, and dead-lettered only after it
  failed ``max_handling_failures`` times here. A delivery that comes back because its
  consumer died is not counted: a crash loop must never dead-letter healthy messages.
- A step's answers are published only after its transaction committed, grouped by
  destination (one envelope each); the queues of regions registered in the step are
  declared before anything is sent. With ``mailbox`` (the clearinghouse, when regions
  are hosted by province) a region's operations go to its province host's mailbox, one
  envelope per province that names each operation's region.
- An engine with ``hosted`` cores (a province host's mailbox) applies each operation of
  a delivery to the core of the region it names, in one transaction over all their
  databases; a delivery that names a region not hosted here, or none, is dead-lettered
  as ``misrouted``, as is a named one on a queue of one region.
- A step's deliveries are acknowledged only after its answers were confirmed, and steps
  settle in the order they were taken, so one multiple-ack of a step never settles an
  earlier step whose answers could not be published (those are requeued instead).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from contracts.effects import AnyEvent, Effects, Outgoing, RegionRegistered
from contracts.identifiers import region_address
from contracts.operations import Operation
from contracts.participants import Participant

Token = TypeVar("Token")
"""The driver's handle on one delivery (an aio-pika message, a simulated message)."""

HANDLER_FAILED = "handler_failed"
"""Dead-letter reason: the delivery failed in this service's own handling too often."""
MISROUTED = "misrouted"
"""Dead-letter reason: the delivery names regions this queue's consumer does not host
(or, on a province mailbox, names none)."""


class Transactional(Protocol):
    """What the engine needs of a store's database (``storage.sqlite.Database``)."""

    def transaction(self) -> AbstractContextManager[Any]: ...


class Core(Protocol):
    """What the engine needs of a core (``RegionCore``, ``ClearinghouseCore``)."""

    def handle(self, op: Operation, now_ms: int) -> Effects: ...
    def tick(self, now_ms: int) -> Effects: ...


Authorize = Callable[[Participant | None, Operation], str | None]
"""Why a sender may not send an operation, or None (``contracts.permissions.refusal``)."""


class SimulatedCrash(BaseException):
    """Raised by a crash hook inside a step's transaction: the process dies there.

    A ``BaseException``, like ``KeyboardInterrupt``: a process that dies is not a handler
    that failed, so the engine must not isolate or count it.
    """


@dataclass(frozen=True, slots=True)
class Inbound(Generic[Token]):
    """One delivery as the engine sees it: its operations and the driver's token."""

    token: Token
    message_id: str
    operations: Sequence[Operation]
    sender: Participant | None = None
    """Who sent it, as the broker authenticated it (never a field of the message)."""
    destinations: Sequence[str] = ()
    """The region of each operation, on a province mailbox (``Envelope.destinations``)."""


@dataclass(frozen=True, slots=True)
class Ack(Generic[Token]):
    """Acknowledge these deliveries (the driver may use one multiple-ack of the last)."""

    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class Requeue(Generic[Token]):
    """Give these deliveries back to the broker, to come again."""

    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class DeadLetter(Generic[Token]):
    """Send this delivery to the dead-letter queue, with a short stable reason."""

    token: Token
    reason: str


Settlement = Ack[Token] | Requeue[Token] | DeadLetter[Token]


@dataclass(slots=True)
class Step(Generic[Token]):
    """What one step produced. The driver declares ``declare``, publishes ``sends``, then
    tells the engine whether that worked (``StepEngine.published``)."""

    seq: int
    done: list[Inbound[Token]]
    """Deliveries whose operations are committed (to ack once ``sends`` are confirmed)."""
    sends: dict[str, list[Operation]]
    """Operations to publish, one envelope per destination, in the order returned."""
    routes: dict[str, list[str]]
    """For a mailbox address of ``sends``: the region of each of its operations."""
    declare: list[str]
    """Addresses whose queues must exist before ``sends`` go out (new regions)."""
    events: list[AnyEvent]
    """What the core reported for this step's committed transaction(s)."""
    settle_now: list[Settlement[Token]] = field(default_factory=list)
    """Settlements to perform at once (refused, failed or dead-lettered deliveries)."""
    operations: int = 0
    """Operations applied (committed) in this step."""
    crashed: bool = False
    """The crash hook fired inside the transaction: nothing of this step happened."""
    published_ok: bool | None = None
    """Set by ``published``: None while the answers await their confirms."""
    refused: list[tuple[Inbound[Token], str]] = field(default_factory=list)
    """Deliveries refused before the transaction, with the reason (also in settle_now)."""

    @property
    def needs_publish(self) -> bool:
        """Whether the driver has anything to send or settle for this step."""
        return bool(self.sends or self.done)


class StepEngine(Generic[Token]):
    """Runs one service's core over batches of deliveries; see the module docstring."""

    def __init__(
        self,
        core: Core,
        db: Transactional,
        *,
        pipeline_depth: int = 2,
        max_handling_failures: int = 3,
        authorize: Authorize | None = None,
        mailbox: Callable[[str], tuple[str, str]] | None = None,
        hosted: Mapping[str, Core] | None = None,
    ) -> None:
        if pipeline_depth < 1:
            raise ValueError(f"pipeline_depth must be >= 1: {pipeline_depth}")
        if max_handling_failures < 1:
            raise ValueError(f"max_handling_failures must be >= 1: {max_handling_failures}")
        self.core = core
        self.db = db
        self.pipeline_depth = pipeline_depth
        self.max_handling_failures = max_handling_failures
        self.authorize = authorize
        """None accepts every sender: only for tests of the engine and benchmarks."""
        self.mailbox = mailbox
        """Where to send a destination's operations and the region to name there
        (``contracts.identifiers.mailbox_route``); None: to the destination itself."""
        self.hosted = hosted
        """Region code -> core, for a mailbox's deliveries (each names its regions)."""
        self._seq = 0
        self._awaiting: deque[Step[Token]] = deque()
        """Steps taken but not yet settled, oldest first."""
        self._failures: dict[str, int] = {}
        """Message id -> how often its handling failed here (in memory: a restart
        forgets it, and the broker's delivery limit is the backstop above that)."""
        self.on_failure: Callable[[Inbound[Token], BaseException], None] | None = None
        """Told of each delivery that failed alone (the shell logs it)."""

    # --- taking steps ---

    def room(self) -> bool:
        """Whether another step may start: fewer than ``pipeline_depth`` await confirms."""
        return len(self._awaiting) < self.pipeline_depth

    @property
    def awaiting(self) -> int:
        """Steps whose answers await their confirms (or whose settling waits on those)."""
        return len(self._awaiting)

    def start(self, now_ms: int, on_start: Callable[[int], Effects]) -> Step[Token]:
        """Run ``on_start`` (the clearinghouse's resume) in one transaction, before any
        delivery is consumed; its answers are published like a step's."""
        with self.db.transaction():
            effects = on_start(now_ms)
        return self._step([], effects, [], 0)

    def step(
        self,
        batch: Sequence[Inbound[Token]],
        now_ms: int,
        tick: bool = False,
        crash: Callable[[], None] | None = None,
    ) -> Step[Token]:
        """Apply a batch (and, with ``tick``, the timers) in one transaction.

        ``crash`` is the simulator's hook: called inside the transaction after the
        operations ran; a ``SimulatedCrash`` from it rolls everything back and the step
        comes back ``crashed`` (the driver then kills the process).
        """
        settle_now = self._on_receipt(batch)
        batch, refused = self._authorized(batch)
        settle_now += [DeadLetter(inbound.token, reason) for inbound, reason in refused]
        try:
            with self.db.transaction():
                effects, n_ops = self._apply(batch, now_ms)
                if tick:
                    effects += self.core.tick(now_ms)
                if crash is not None:
                    crash()
            done = list(batch)
        except SimulatedCrash:
            step = self._step([], Effects(), settle_now, 0)
            step.crashed = True
            step.refused = refused
            return step
        except Exception:
            effects, done, n_ops, failed = self._one_by_one(batch, now_ms)
            # (Timers that ran in the failed transaction run again at the next tick.)
            settle_now += failed
        for inbound in done:
            self._failures.pop(inbound.message_id, None)
        step = self._step(done, effects, settle_now, n_ops)
        step.refused = refused
        return step

    def _authorized(
        self, batch: Sequence[Inbound[Token]]
    ) -> tuple[list[Inbound[Token]], list[tuple[Inbound[Token], str]]]:
        """The deliveries whose every operation its sender may send, and the others."""
        authorize = self.authorize
        allowed: list[Inbound[Token]] = []
        refused: list[tuple[Inbound[Token], str]] = []
        for inbound in batch:
            sender = inbound.sender
            reason = self._misrouted(inbound)
            if authorize is not None and reason is None:
                for op in inbound.operations:
                    reason = authorize(sender, op)
                    if reason is not None:
                        break
            if reason is None:
                allowed.append(inbound)
            else:
                refused.append((inbound, reason))
        return allowed, refused

    def _misrouted(self, inbound: Inbound[Token]) -> str | None:
        """``MISROUTED`` if the delivery's regions are not (all) hosted here."""
        hosted = self.hosted
        if hosted is None:
            return MISROUTED if inbound.destinations else None
        destinations = inbound.destinations
        if not destinations or any(code not in hosted for code in destinations):
            return MISROUTED
        return None

    def _on_receipt(self, batch: Sequence[Inbound[Token]]) -> list[Settlement[Token]]:
        """Settlements due as soon as a batch is taken: none. (A consumer that acked on
        receipt, like one consuming with ``no_ack``, would lose a batch in a crash.)"""
        return []

    def _apply(self, batch: Sequence[Inbound[Token]], now_ms: int) -> tuple[Effects, int]:
        outgoing: list[Outgoing] = []
        events: list[AnyEvent] = []
        n_ops = 0
        handle = self.core.handle
        hosted = self.hosted
        for inbound in batch:
            if hosted is None:
                for op in inbound.operations:
                    effects = handle(op, now_ms)
                    outgoing += effects.outgoing
                    events += effects.events
            else:
                for code, op in zip(inbound.destinations, inbound.operations, strict=True):
                    effects = hosted[code].handle(op, now_ms)
                    outgoing += effects.outgoing
                    events += effects.events
            n_ops += len(inbound.operations)
        return Effects(outgoing, events), n_ops

    def _one_by_one(
        self, batch: Sequence[Inbound[Token]], now_ms: int
    ) -> tuple[Effects, list[Inbound[Token]], int, list[Settlement[Token]]]:
        """After a failed batch: each delivery alone, so a bad one stays alone."""
        committed: list[Effects] = []
        done: list[Inbound[Token]] = []
        failed: list[Settlement[Token]] = []
        n_ops = 0
        for inbound in batch:
            try:
                with self.db.transaction():
                    effects, n = self._apply([inbound], now_ms)
            except Exception as error:
                failed.append(self._failed(inbound, error))
                continue
            committed.append(effects)
            n_ops += n
            done.append(inbound)
        return Effects.join(committed), done, n_ops, failed

    def _failed(self, inbound: Inbound[Token], error: BaseException) -> Settlement[Token]:
        count = self._failures.get(inbound.message_id, 0) + 1
        if self.on_failure is not None:
            self.on_failure(inbound, error)
        if count >= self.max_handling_failures:
            self._failures.pop(inbound.message_id, None)
            return DeadLetter(inbound.token, HANDLER_FAILED)
        self._failures[inbound.message_id] = count
        return Requeue((inbound.token,))

    def _step(
        self,
        done: list[Inbound[Token]],
        effects: Effects,
        settle_now: list[Settlement[Token]],
        n_ops: int,
    ) -> Step[Token]:
        self._seq += 1
        sends: dict[str, list[Operation]] = {}
        routes: dict[str, list[str]] = {}
        events = effects.events
        mailbox = self.mailbox
        for item in effects.outgoing:
            address, region = (item.address, "") if mailbox is None else mailbox(item.address)
            ops = sends.get(address)
            if ops is None:
                ops = sends[address] = []
            ops.append(item.op)
            if region:
                # A region's operation in its province's mailbox: name the region.
                routes.setdefault(address, []).append(region)
        declare = [region_address(e.region) for e in events if isinstance(e, RegionRegistered)]
        if mailbox is not None:
            # Clients still send to a region's own queue; the hub sends to its mailbox.
            mailboxes = {mailbox(address)[0] for address in declare} - set(declare)
            declare += sorted(mailboxes)
        step = Step(self._seq, done, sends, routes, declare, events, settle_now, n_ops)
        if step.needs_publish:
            self._awaiting.append(step)
        return step

    # --- after publishing ---

    def published(self, step: Step[Token], ok: bool) -> list[Settlement[Token]]:
        """The driver published a step's answers (``ok``) or could not (declare failed,
        nack, return, lost channel). Returns the settlements now due, oldest step first:
        the driver must perform them in this order, and before those of a later call."""
        if step.published_ok is not None:
            raise ValueError(f"step {step.seq} was already reported published")
        step.published_ok = ok
        return self._due()

    def _due(self) -> list[Settlement[Token]]:
        due: list[Settlement[Token]] = []
        awaiting = self._awaiting
        while awaiting and awaiting[0].published_ok is not None:
            head = awaiting.popleft()
            due += self._settle(head)
        return due

    def _settle(self, step: Step[Token]) -> list[Settlement[Token]]:
        """How a published (or failed) step's deliveries are settled."""
        if not step.done:
            return []
        tokens = tuple(i.token for i in step.done)
        if step.published_ok:
            return [Ack(tokens)]
        # Committed, but the answers were not sent: redelivery re-sends them (idempotent).
        return [Requeue(tokens)]
