"""The simulated world: real cores over real stores, a simulated broker, virtual time.

Every region and the clearinghouse is the real core (``RegionCore``,
``TransferCoordinator``) over its real store on an in-memory SQLite database, driven by
the services' own step engine (``broker.engine.StepEngine``, which the RabbitMQ shell
drives too): a node takes a batch of messages from its queue, the engine applies them in
one transaction, the node publishes what the engine grouped by destination, and the
publish's confirm comes back later, while the next batch may already be applied (the
engine's pipelining). Only the settlements the engine then returns ack, requeue or
dead-letter messages, and this broker checks them: a message acked before its step
committed or before its answers were confirmed is a violation, and so is a healthy
message dead-lettered. The broker keeps every published message until it is acked: a
crash, a lost delivery or a lost ack means the message comes again, and a message
returned more often than the queues' delivery limit is dead-lettered, as by RabbitMQ.

A crash discards the core object and everything the node held in memory; the database
object stays, holding exactly what was committed, and a new core is built over it (the
clearinghouse then runs ``resume``, as its service does on start).

Time is virtual, in integer milliseconds, and one seeded ``random.Random`` makes every
choice, so a seed replays the same run. Nothing here opens a socket; the wall clock is read only
to report where the time went (``Stats``), never to decide anything.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from broker.engine import (
    Ack,
    DeadLetter,
    Inbound,
    Requeue,
    Settlement,
    SimulatedCrash,
    Step,
    StepEngine,
)
from broker.shell import ShellTuning
from broker.topology import Topology
from broker.users import may_publish
from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import ClearinghouseStore
from contracts.effects import Anomaly, AnyEvent, Disagreed, Outgoing, WindowClosed
from contracts.identifiers import CLEARINGHOUSE, client_address, region_address
from contracts.operations import (
    Abort,
    BillOutcome,
    CloseWindow,
    Commit,
    CommitResult,
    Credit,
    Flow,
    Operation,
    RequestAid,
    Reserve,
    ReserveResult,
    SetRegionEnabled,
)
from contracts.participants import HUB, Participant, admin, client, region
from contracts.permissions import REFUSALS, refusal
from gongji.population import Population, RegionSpec, generate_population
from gongji.sim import views
from gongji.sim.checker import Checker
from gongji.sim.faults import DEFAULT_RATES, FaultRates
from gongji.sim.planted import PLANTS, EngineFactory, RegionFactory
from gongji.sim.trace import Trace, encode
from gongji.sim.workload import Request, build_workload
from regions.books import Books
from regions.core import RegionCore
from regions.store import RegionStore
from storage.sqlite import Database, open_database

CLIENT = client_address("sim")
OPERATOR = client_address("operator")
SUBMITTER = admin("sim")
"""The submitting client's broker user (an operator too: the demo enrolls through it)."""
FORGER = client("mallory")
"""A plain client that forges messages (the ``hostile`` fault)."""

# Crash points within one step: hooks of the step engine's life.
MID_TRANSACTION = "mid-transaction"
AFTER_COMMIT = "after commit, before publish"
AFTER_PUBLISH = "after publish, before confirm"
BEFORE_ACK = "after confirm, before ack"
_STEP_CRASHES = (MID_TRANSACTION, AFTER_COMMIT, AFTER_PUBLISH, BEFORE_ACK)

DELIVERY_LIMIT = Topology().delivery_limit
"""The service queues' delivery limit, as the real topology declares it."""

# Event kinds (small ints: the heap compares them only on ties of time and sequence).
_STEP, _TICK, _RELEASE, _RESTART, _CLIENT, _CHECK, _CUT, _HEAL_NODE = range(8)
_PARTITION, _DISABLE, _ENABLE, _HEAL, _DEADLINE, _WINDOW = range(8, 14)
_CONFIRM, _CRASH_LOOP, _KILL, _FORGE = range(14, 18)


def _crash() -> None:
    raise SimulatedCrash


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulation run. The same config (and code) gives the same run."""

    seed: int = 1
    transfers: int = 1_000
    regions: int = 10
    faults: FaultRates = DEFAULT_RATES
    plant: str = ""
    """A planted bug from ``gongji.sim.planted.PLANTS`` (tests and demonstrations)."""
    persons_per_region: int = 0
    """0: enough that most bills find money (about one employee per bill)."""
    wallet_share: float = 0.08
    """Of the requests, co-payers' wallet transfers to bound relatives."""
    premium_share: float = 0.04
    """Of the requests, co-payers paying a bound resident relative's premium."""
    requests_per_second: int = 1_000
    """Arrival rate of requests, in simulated time."""
    max_batch: int = 64
    """Messages a node applies in one transaction (the shell's ``max_batch_messages``)."""
    pipeline_depth: int = 2
    """Steps whose answers may await their confirms at once (the shell's default)."""
    prefetch: int = ShellTuning().prefetch
    """Messages the broker has pushed to a consumer ahead of its batches: when the
    consumer dies, these come back too, and each such return counts towards the
    delivery limit (as a quorum queue counts it)."""
    delivery_limit: int = DELIVERY_LIMIT
    confirm_ms: tuple[int, int] = (1, 8)
    """How long the broker takes to confirm a step's published answers."""
    latency_ms: tuple[int, int] = (1, 4)
    ops_per_ms: int = 5
    """How fast a node applies operations: a batch of n keeps it busy 1 + n // this ms,
    so a busy node (the clearinghouse) takes bigger batches, as a real one does."""
    region_tick_ms: int = 200
    clearinghouse_tick_ms: int = 100
    client_retry_ms: int = 0
    """The submitter sends an unanswered request again after this long; 0 never does,
    like ``gongji.client.BillClient``, so the cores alone must bring every request to
    its outcome."""
    window_ms: int = 5_000
    """The operator closes the clearing window this often (and once more at the end)."""
    check_interval_ms: int = 1_000
    """Incremental invariant checks (and, after healing, the quiet test) this often."""
    full_checks: int = 3
    """Whole-books checks of every region during the run (and of a region after each of
    its restarts); each reads every journal entry, so they are few."""
    settle_ms: int = 5_000
    """Faults go on this long after the last request arrives; then they heal."""
    liveness_limit_ms: int = 300_000
    """After healing, every request must reach its final outcome within this long (the
    longest timer of the cores is the 60 s hold timeout; retries back off to 30 s)."""
    settings: CoordinatorSettings | None = None
    """Coordinator deadlines; None: the defaults, with a short hold timeout when the
    ``expiry`` fault is on."""

    def replay_command(self) -> str:
        """The ``gongji sim`` command that runs this config again."""
        parts = [
            "gongji sim",
            f"--seed {self.seed}",
            f"--transfers {self.transfers}",
            f"--regions {self.regions}",
            f"--faults {self.faults.spec()}",
        ]
        defaults = SimConfig()
        for option, value, default in (
            ("--plant", self.plant, defaults.plant),
            ("--client-retry-ms", self.client_retry_ms, defaults.client_retry_ms),
            ("--rate", self.requests_per_second, defaults.requests_per_second),
            ("--wallet-share", self.wallet_share, defaults.wallet_share),
            ("--premium-share", self.premium_share, defaults.premium_share),
            ("--window-ms", self.window_ms, defaults.window_ms),
        ):
            if value != default:
                parts.append(
                    f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}"
                )
        if self.settings is not None or self.persons_per_region:
            parts.append("# (and settings the command line does not take)")
        return " ".join(parts)


# What the broker knows of a delivered message (``Message.phase``).
_DELIVERED = 0  # handed to the consumer, its step not committed
_COMMITTED = 1  # its step committed; ``Message.step`` says which


class Message:
    """One message in a queue: the operations of one envelope."""

    __slots__ = (
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
    ) -> None:
        self.ops = ops
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
        self.phase = _DELIVERED
        self.step = 0

    def again(self, ready_ms: int) -> Message:
        copy = Message(self.ops, ready_ms, self.text, self.sender, self.hostile)
        copy.redelivered = True
        copy.returns = self.returns + 1
        return copy


class Node:
    """A consumer of one queue: a region, the clearinghouse, or the submitting client."""

    __slots__ = (
        "address",
        "books",
        "code",
        "confirmed",
        "core",
        "db",
        "engine",
        "epoch",
        "kills_left",
        "last_ready",
        "next_tag",
        "participant",
        "partitioned",
        "queue",
        "scheduled",
        "tick_ms",
        "unacked",
        "up",
    )

    def __init__(
        self,
        address: str,
        code: str,
        db: Database | None,
        tick_ms: int,
        participant: Participant | None = None,
    ) -> None:
        self.address = address
        self.participant = participant
        """Its broker user: who the messages it publishes come from."""
        self.code = code
        self.db = db
        self.core: Any = None
        self.engine: StepEngine[Message] | None = None
        self.books: Books | None = None
        self.unacked: dict[int, Message] = {}
        """Delivered, not yet acked: by delivery tag, in delivery order."""
        self.next_tag = 0
        self.confirmed: dict[int, bool] = {}
        """Step seq -> whether its answers were confirmed (steps of this incarnation)."""
        self.kills_left = 0
        """Kills still due in a crash loop: each soon after the node comes back."""
        self.queue: deque[Message] = deque()
        self.up = True
        self.partitioned = False
        self.scheduled = False
        self.epoch = 0
        self.last_ready = 0
        self.tick_ms = tick_ms


@dataclass(slots=True)
class Stats:
    """Counts of what the network did (besides faults)."""

    deliveries: int = 0
    operations: int = 0
    steps: int = 0
    ticks: int = 0
    client_retries: int = 0
    redeliveries: int = 0
    publish_dropped: int = 0
    unroutable: int = 0
    core_errors: int = 0
    dead_lettered: int = 0
    forgeries: int = 0
    """Forged messages published by the ``hostile`` fault."""
    forgeries_refused: int = 0
    """Of those, refused by the broker (routing) or by the receiver (permissions)."""
    # Wall time, for the report only: in the cores' transactions (handle, tick, resume
    # and SQLite), in the invariant checks, and in setting up the population.
    core_seconds: float = 0.0
    check_seconds: float = 0.0
    setup_seconds: float = 0.0


@dataclass(slots=True)
class RunResult:
    """What a run produced; ``gongji.sim.report`` turns it into the printed report."""

    config: SimConfig
    regions: tuple[RegionSpec, ...]
    requests: list[Request]
    outcomes: dict[str, BillOutcome]
    windows_closed: int
    faults_injected: dict[str, int]
    checker: Checker
    trace_hash: str
    simulated_ms: int
    healed_at_ms: int
    quiet_at_ms: int | None
    stats: Stats
    settings: CoordinatorSettings
    trace_lines: dict[str, list[str]] = field(default_factory=dict)


class Simulation:
    """One seeded run of the whole network; ``run()`` once."""

    def __init__(
        self,
        config: SimConfig,
        regions: tuple[RegionSpec, ...],
        *,
        population: Population | None = None,
        requests: list[Request] | None = None,
        watch: Sequence[str] = (),
        progress: Callable[[int, int, int, str], None] | None = None,
    ) -> None:
        self._born = perf_counter()
        self.config = config
        self.rates = config.faults
        self.rng = random.Random(config.seed)
        self.trace = Trace(watch)
        self.watching = bool(self.trace.watch)
        self.progress = progress
        plant = PLANTS[config.plant] if config.plant else None
        self.region_factory: RegionFactory = (plant.region if plant else None) or RegionCore
        self.engine_factory: EngineFactory = (plant.engine if plant else None) or StepEngine
        self.coordinator_class: type[TransferCoordinator] = (
            plant.coordinator if plant else None
        ) or TransferCoordinator
        self.settings = config.settings or self._settings()
        self.regions = regions
        persons = config.persons_per_region or max(
            50, math.ceil(1.2 * config.transfers / len(regions))
        )
        self.population = population or generate_population(regions, persons, config.seed)
        self.requests = requests or build_workload(
            self.population,
            config.transfers,
            config.seed,
            CLIENT,
            wallet_share=config.wallet_share,
            premium_share=config.premium_share,
        )
        self.now = 0
        self._events: list[tuple[int, int, int, Any, Any]] = []
        self._seq = 0
        self.faults: dict[str, int] = {}
        self.stats = Stats()
        self.faults_active = self.rates != FaultRates()
        self.phase = "faults"
        self.healed_at = 0
        self.quiet_at: int | None = None
        self.done = False
        self.dirty: set[str] = set()
        self._checks_done = 0
        self._full_every = 1
        # Nodes: the clearinghouse, the regions, the submitting client.
        self.nodes: dict[str, Node] = {}
        ch_db = open_database(":memory:")
        self.clearinghouse = self._add(
            Node(CLEARINGHOUSE, "", ch_db, config.clearinghouse_tick_ms, HUB)
        )
        self.region_nodes: dict[str, Node] = {}
        for spec in regions:
            node = Node(
                region_address(spec.code),
                spec.code,
                open_database(":memory:"),
                config.region_tick_ms,
                region(spec.code),
            )
            self.region_nodes[spec.code] = self._add(node)
        self.client = self._add(Node(CLIENT, "", None, 0, SUBMITTER))
        self.operator = self._add(Node(OPERATOR, "", None, 0, admin("operator")))
        self.forger = self._add(Node(FORGER.address, "", None, 0, FORGER))
        for node in self._service_nodes():
            self._build(node)
        # The submitter's view: first outcome per request, any later different one.
        self.outcomes: dict[str, BillOutcome] = {}
        self.conflicts: list[tuple[BillOutcome, BillOutcome]] = []
        self.replies: list[Operation] = []
        self._by_id = {r.transfer_id: r for r in self.requests}
        self.checker = Checker(
            {code: _sql(n) for code, n in self.region_nodes.items()},
            {code: Books(_db(n)) for code, n in self.region_nodes.items()},
            ch_db.connection,
            self._by_id,
            self.population.opening_total_fen,
        )
        self._windows = 0
        self._final_window = False
        self._deadline = 0
        self.latest: dict[str, BillOutcome] = {}
        """The last outcome received for each request (the demo replays some)."""
        self._arrivals: list[int] = []
        self._next_request = 0
        self._retries: deque[tuple[int, str]] = deque()
        self._enabled = {spec.code for spec in regions if spec.enabled}
        self._disabled_by_fault: set[str] = set()
        self._partition_running = False
        self._forged = 0

    # --- set-up ---

    def _settings(self) -> CoordinatorSettings:
        if self.rates.expiry > 0:
            # Holds that expire soon after they are taken, so late commits race them.
            return CoordinatorSettings(hold_timeout_ms=self.rng.randint(150, 800))
        return CoordinatorSettings()

    def _add(self, node: Node) -> Node:
        self.nodes[node.address] = node
        return node

    def _service_nodes(self) -> list[Node]:
        return [self.clearinghouse, *self.region_nodes.values()]

    def _build(self, node: Node) -> None:
        """A fresh core and engine over the node's database (at start, after a crash)."""
        db = _db(node)
        if node is self.clearinghouse:
            ch_store = ClearinghouseStore(db)
            node.core = ClearinghouseCore(ch_store, self.settings, self.coordinator_class)
        else:
            store = RegionStore(db)
            node.core = self.region_factory(node.code, store)
            node.books = store.books
        node.engine = self.engine_factory(
            node.core, db, pipeline_depth=self.config.pipeline_depth, authorize=refusal
        )
        node.confirmed = {}

    def _setup(self) -> None:
        """Registry, persons and bindings, delivered in rounds at time 0 without faults.

        Set-up is not under test, so it takes the short way: each round applies every
        node's pending operations in one transaction, until nothing more is sent.
        """
        pending = self.population.setup_operations()
        while pending:
            by_node: dict[str, list[Operation]] = {}
            for item in pending:
                by_node.setdefault(item.address, []).append(item.op)
            pending = []
            for address, ops in by_node.items():
                node = self.nodes[address]
                if node.db is None:
                    self.replies += ops
                    continue
                with node.db.transaction():
                    results = [node.core.handle(op, 0) for op in ops]
                for result in results:
                    pending += result.outgoing
                    self._events_of(node, result.events)

    # --- the event loop ---

    def _at(self, when: int, kind: int, target: Any = None, arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, kind, target, arg))

    def run(self) -> RunResult:
        """Set up, run with faults, heal, run until quiet, check everything."""
        cfg = self.config
        self._setup()
        self.stats.setup_seconds = perf_counter() - self._born  # population and set-up
        self._plan_arrivals()
        for node in self._service_nodes():
            self._at(self.rng.randrange(node.tick_ms), _TICK, node, node.epoch)
        if self._arrivals:
            self._at(self._arrivals[0], _CLIENT)
        last = self._arrivals[-1] if self._arrivals else 0
        end_of_faults = last + cfg.settle_ms
        checks = end_of_faults // cfg.check_interval_ms
        self._full_every = -(-checks // cfg.full_checks) if cfg.full_checks else 0
        self._at(cfg.check_interval_ms, _CHECK)
        if cfg.window_ms:
            self._at(cfg.window_ms, _WINDOW)
        if self.faults_active:
            if self.rates.partition > 0:
                self._at(self._after(self.rates.partition), _PARTITION)
            if self.rates.disable > 0:
                self._at(self._after(self.rates.disable), _DISABLE)
            if self.rates.crash_loop > 0:
                self._at(self._after(self.rates.crash_loop), _CRASH_LOOP)
            if self.rates.hostile > 0:
                self._at(self._after(self.rates.hostile), _FORGE)
        self._at(end_of_faults, _HEAL)
        self._loop()
        self._final()
        return self._result()

    def run_more(self, requests: Sequence[tuple[str, Operation]]) -> None:
        """After ``run``: send more requests (faults are healed) and run until quiet again.

        Their outcomes land in ``latest``; nothing more is checked.
        """
        self.done = False
        self._publish(None, [Outgoing(region_address(code), op) for code, op in requests])
        self._deadline += 1
        self._at(self.now + self.config.liveness_limit_ms, _DEADLINE, None, self._deadline)
        self._at(self.now + self.config.check_interval_ms, _CHECK)
        self._loop()

    def send_more(self, outgoing: Sequence[Outgoing]) -> None:
        """After ``run``: deliver any operations (to regions, the clearinghouse) and run
        until quiet again. Outcomes land in ``latest``, other answers in ``replies``."""
        self.done = False
        self._publish(None, list(outgoing))
        self._deadline += 1
        self._at(self.now + self.config.liveness_limit_ms, _DEADLINE, None, self._deadline)
        self._at(self.now + self.config.check_interval_ms, _CHECK)
        self._loop()

    def advance(self, ms: int) -> None:
        """After ``run``: let ``ms`` of virtual time pass (timers fire), then run until quiet."""
        self.done = False
        self._deadline += 1
        self._at(self.now + ms + self.config.liveness_limit_ms, _DEADLINE, None, self._deadline)
        self._at(self.now + ms, _CHECK)
        self._loop()

    def _loop(self) -> None:
        events = self._events
        pop = heapq.heappop
        while events and not self.done:
            when, _, kind, target, arg = pop(events)
            self.now = when
            if kind == _STEP:
                if arg == target.epoch:
                    self._step(target)
            elif kind == _TICK:
                if arg == target.epoch and target.up:
                    self._tick(target)
            elif kind == _RELEASE:
                self._release(target, arg)
            else:
                self._other(kind, target, arg)

    def _result(self) -> RunResult:
        cfg = self.config
        return RunResult(
            config=cfg,
            regions=self.regions,
            requests=self.requests,
            outcomes=self.outcomes,
            windows_closed=self._windows,
            # Every kind switched on, even if its dice never came up in this run.
            faults_injected={k: self.faults.get(k, 0) for k in self.rates.enabled()}
            | dict(sorted(self.faults.items())),
            checker=self.checker,
            trace_hash=self.trace.hexdigest(),
            simulated_ms=self.now,
            healed_at_ms=self.healed_at,
            quiet_at_ms=self.quiet_at,
            stats=self.stats,
            settings=self.settings,
            trace_lines=self.trace.lines,
        )

    def _other(self, kind: int, target: Any, arg: Any) -> None:
        if kind == _CLIENT:
            self._client()
        elif kind == _CHECK:
            self._check()
        elif kind == _RESTART:
            if arg == target.epoch and not target.up:
                self._restart(target)
        elif kind == _CUT:
            self._cut(target)
        elif kind == _HEAL_NODE:
            self._heal_node(target)
        elif kind == _PARTITION:
            self._partition()
        elif kind == _DISABLE:
            self._disable()
        elif kind == _ENABLE:
            self._operator(SetRegionEnabled(target, True))
            self._disabled_by_fault.discard(target)
        elif kind == _HEAL:
            self._heal()
        elif kind == _WINDOW:
            if self.phase == "faults":  # after healing, only the last window closes
                self._close_window()
                self._at(self.now + self.config.window_ms, _WINDOW)
        elif kind == _DEADLINE:
            self.done = arg == self._deadline
        elif kind == _CONFIRM:
            epoch, step, ok, crash_before_ack = arg
            self._confirm(target, epoch, step, ok, crash_before_ack)
        elif kind == _CRASH_LOOP:
            self._crash_loop()
        elif kind == _KILL and arg == target.epoch:
            self._loop_kill(target)
        elif kind == _FORGE:
            self._forge()

    def _after(self, per_second: float) -> int:
        """Time to the next episode of a fault that comes ``per_second`` times a second."""
        return self.now + max(1, int(self.rng.expovariate(per_second) * 1000))

    def _fault(self, kind: str, detail: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1
        self.trace.fault(self.now, kind, detail)

    # --- the broker ---

    def _publish(self, source: Node | None, outgoing: list[Outgoing]) -> bool:
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
        return self._publish_grouped(source, grouped)

    def _publish_grouped(self, source: Node | None, sends: dict[str, list[Operation]]) -> bool:
        if not sends:
            return True
        if source is not None and source.partitioned:
            # The shell's publish fails; state is committed, the answers are not sent.
            self.stats.publish_dropped += 1
            self.trace.fault(self.now, "publish_dropped", source.address)
            if self.watching:
                lost = [op for ops in sends.values() for op in ops]
                self.trace.note(self.now, lost, f"{source.address} LOST")
            return False
        sender = (source or self.client).participant
        for address, ops in sends.items():
            self._send(address, tuple(ops), sender)
        return True

    def _send(
        self,
        address: str,
        ops: tuple[Operation, ...],
        sender: Participant | None,
        hostile: bool = False,
    ) -> None:
        if sender is not None and not may_publish(sender, address):
            # The broker's topic permissions refuse the routing key.
            self.trace.fault(self.now, "routing_refused", f"{sender} -> {address}")
            if hostile:
                self.stats.forgeries_refused += 1
            else:
                self.checker.fail(
                    "genuine messages routed",
                    f"the broker refused {sender}'s message to {address}",
                    str(getattr(ops[0], "transfer_id", "")),
                    self.now,
                )
            return
        node = self.nodes.get(address)
        if node is None:
            # Unroutable: the broker drops it (the shell logs it). A core sending to an
            # address nobody serves shows up as a stuck transfer.
            self.stats.unroutable += 1
            self.trace.fault(self.now, "unroutable", address)
            return
        now = self.now
        rng = self.rng
        rates = self.rates
        msg = Message(ops, now, encode(ops), sender, hostile)
        if self.watching:
            self.trace.note(now, ops, f"-> {address}")
        lo, hi = self.config.latency_ms
        ready = now + lo + int(rng.random() * (hi - lo + 1))
        if self.faults_active:
            if rates.delay and rng.random() < rates.delay:
                self._fault("delay", address)
                self._hold_back(node, msg, now + rng.randint(10, 3_000), "delayed")
                return
            if rates.expiry and node.code and rng.random() < rates.expiry:
                late = self.settings.hold_timeout_ms
                self._fault("expiry", address)
                self._hold_back(node, msg, now + rng.randint(late // 2, late * 3 // 2), "late")
                return
            if rates.reorder and node.queue and rng.random() < rates.reorder:
                self._fault("reorder", address)
                msg.ready_ms = ready
                node.queue.insert(rng.randrange(len(node.queue)), msg)
                if self.watching:
                    self.trace.note(now, ops, f"reordered in {address}")
                self._wake(node, ready)
                return
        # Per-queue FIFO: never ready before the message published ahead of it.
        if ready < node.last_ready:
            ready = node.last_ready
        node.last_ready = ready
        msg.ready_ms = ready
        node.queue.append(msg)
        self._wake(node, ready)

    def _hold_back(self, node: Node, msg: Message, until: int, what: str) -> None:
        """The message re-enters its queue at ``until``, behind whatever came meanwhile."""
        if self.watching:
            self.trace.note(self.now, msg.ops, f"{what} until {until} ms for {node.address}")
        self._at(until, _RELEASE, node, msg)

    def _release(self, node: Node, msg: Message) -> None:
        msg.ready_ms = self.now
        node.queue.append(msg)
        self._wake(node, self.now)

    def _wake(self, node: Node, ready: int) -> None:
        if not node.scheduled and node.up and not node.partitioned:
            node.scheduled = True
            self._at(max(ready, self.now), _STEP, node, node.epoch)

    def _return(self, node: Node, msgs: Sequence[Message]) -> None:
        """Unacked messages go back to the head of the queue, marked redelivered; one
        returned more often than the delivery limit is dead-lettered by the broker."""
        self.stats.redeliveries += len(msgs)
        for msg in reversed(msgs):
            node.unacked.pop(msg.tag, None)
            msg.returns += 1
            if msg.returns > self.config.delivery_limit:
                self._dead_letter(node, msg, "delivery_limit")
                continue
            msg.redelivered = True
            msg.phase = _DELIVERED
            node.queue.appendleft(msg)

    def _dead_letter(self, node: Node, msg: Message, reason: str) -> None:
        """A forged message must be refused; any other is healthy, and dead-lettering it
        loses a request."""
        self.stats.dead_lettered += 1
        self.trace.fault(self.now, "dead_letter", f"{node.address} {reason}")
        if msg.hostile and reason in REFUSALS:
            self.stats.forgeries_refused += 1
            return
        tids = sorted({str(getattr(op, "transfer_id", "")) for op in msg.ops})
        for tid in tids or [""]:
            self.checker.fail(
                "no healthy message dead-lettered",
                f"{node.address}: a message ({msg.text[:120]}) was dead-lettered: {reason}",
                tid,
                self.now,
            )

    # --- nodes at work ---

    def _step(self, node: Node) -> None:
        node.scheduled = False
        if not node.up or node.partitioned:
            return
        engine = node.engine
        queue = node.queue
        now = self.now
        if engine is not None and not engine.room():
            return  # woken when a confirm settles a step
        batch: list[Message] = []
        limit = self.config.max_batch
        while queue and len(batch) < limit and queue[0].ready_ms <= now:
            batch.append(queue.popleft())
        if batch and self.faults_active and self.rates.loss:
            batch = self._lose(node, batch)
        busy = 1
        if batch:
            if node.db is None:
                self._outside_receive(node, batch)
            else:
                busy += sum(len(m.ops) for m in batch) // self.config.ops_per_ms
                self._deliver(node, batch)
                self._apply(node, batch)
        if queue and node.up and not node.partitioned:
            node.scheduled = True
            self._at(max(now + busy, queue[0].ready_ms), _STEP, node, node.epoch)

    def _deliver(self, node: Node, batch: list[Message]) -> None:
        """The broker hands the batch to the consumer: unacked until settled."""
        if node.kills_left:
            # A crash loop kills the service just after it started consuming again, its
            # prefetch full (as a kill 0.5 s after the service answers does).
            node.kills_left -= 1
            self._at(self.now + self.rng.randint(0, 5), _KILL, node, node.epoch)
        for msg in batch:
            node.next_tag += 1
            msg.tag = node.next_tag
            msg.phase = _DELIVERED
            node.unacked[msg.tag] = msg

    def _lose(self, node: Node, batch: list[Message]) -> list[Message]:
        kept = []
        for msg in batch:
            if self.rng.random() < self.rates.loss:
                self._fault("loss", node.address)
                self._hold_back(
                    node,
                    msg.again(0),
                    self.now + self.rng.randint(10, 1_000),
                    "lost before ack, redelivered",
                )
            else:
                kept.append(msg)
        return kept

    def _crash_point(self) -> str | None:
        if self.faults_active and self.rates.crash and self.rng.random() < self.rates.crash:
            return self.rng.choice(_STEP_CRASHES)
        return None

    def _apply(self, node: Node, batch: list[Message]) -> None:
        """One engine step over a batch: the engine's transaction, then publishing."""
        now = self.now
        self.stats.steps += 1
        crash = self._crash_point()
        trace = self.trace
        address = node.address
        for msg in batch:
            trace.delivered(now, address, msg.text)
        inbound = [Inbound(msg, str(msg.tag), msg.ops, msg.sender) for msg in batch]
        step = self._run_step(node, inbound, False, crash)
        if step is None:
            return
        if self.watching:
            for msg in batch:
                again = " (redelivered)" if msg.redelivered else ""
                trace.note(now, msg.ops, f"{address} applied{again}")
        self._after_step(node, step, crash)

    def _tick(self, node: Node) -> None:
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
        self._at(self.now + node.tick_ms, _TICK, node, node.epoch)

    def _run_step(
        self, node: Node, inbound: list[Inbound[Message]], tick: bool, crash: str | None
    ) -> Step[Message] | None:
        """The engine's step; None when the node died in it."""
        engine = node.engine
        assert engine is not None
        hook = _crash if crash is MID_TRANSACTION else None
        started = perf_counter()
        try:
            step = engine.step(inbound, self.now, tick, crash=hook)
        except Exception as error:  # a core's timer raised: report it, keep ticking
            self.stats.core_errors += 1
            self.checker.anomaly(
                node.address, "", f"step raised {type(error).__name__}: {error}", self.now
            )
            self._return(node, [i.token for i in inbound])
            return None
        self.stats.core_seconds += perf_counter() - started
        self._perform(node, step.settle_now)
        if step.crashed:
            self._crash_during(node, crash)
            return None
        self._events_of(node, step.events)
        self.stats.deliveries += len(step.done)
        dirty = self.dirty
        for item in step.done:
            msg = item.token
            if msg.hostile:
                self.checker.fail(
                    "forgeries have no effect",
                    f"{node.address} applied a forged message from {msg.sender}: {msg.text[:120]}",
                    str(getattr(msg.ops[0], "transfer_id", "")),
                    self.now,
                )
            msg.phase = _COMMITTED
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
            self._crash_during(node, crash)
            return
        if not step.needs_publish:
            return
        if self.faults_active and self.rates.nack and self.rng.random() < self.rates.nack:
            self._fault("nack", node.address)
            ok = False  # refused by the broker: nothing of it was routed
        else:
            ok = self._publish_grouped(node, step.sends)
        if crash is AFTER_PUBLISH:
            self._crash_during(node, crash)
            return
        lo, hi = self.config.confirm_ms
        when = self.now + self.rng.randint(lo, hi)
        self._at(when, _CONFIRM, node, (node.epoch, step, ok, crash is BEFORE_ACK))

    def _confirm(
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
            self._crash_during(node, BEFORE_ACK)
            return
        self._perform(node, settlements)
        if node.queue and engine.room():
            self._wake(node, node.queue[0].ready_ms)

    def _perform(self, node: Node, settlements: Sequence[Settlement[Message]]) -> None:
        """The broker carries out the engine's settlements, checking each."""
        for settlement in settlements:
            if isinstance(settlement, Ack):
                self._ack(node, settlement.tokens)
            elif isinstance(settlement, Requeue):
                self._return(node, [m for m in settlement.tokens if m.tag in node.unacked])
            elif isinstance(settlement, DeadLetter):
                msg = settlement.token
                if node.unacked.pop(msg.tag, None) is not None:
                    self._dead_letter(node, msg, settlement.reason)

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
        if self.faults_active and self.rates.duplicate:
            for msg in acked:
                if self.rng.random() < self.rates.duplicate:
                    self._fault("duplicate", node.address)
                    self._hold_back(
                        node,
                        msg.again(0),
                        self.now + self.rng.randint(1, 1_000),
                        "ack lost, redelivered",
                    )

    def _check_ack(self, node: Node, msg: Message) -> None:
        """Ack after commit, and only once the step's answers were confirmed."""
        if msg.phase != _COMMITTED:
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
                self.now,
            )

    def _events_of(self, node: Node, events: Sequence[AnyEvent]) -> None:
        for event in events:
            if isinstance(event, Anomaly):
                self.checker.anomaly(node.address, event.transfer_id, event.what, self.now)
            elif isinstance(event, Disagreed):
                self.checker.disagreed(
                    event.region, event.transfer_id, event.kind, event.window, self.now
                )
            elif isinstance(event, WindowClosed):
                self.checker.window_closed(event.window, event.positions, self.now)

    def _crash_during(self, node: Node, point: str | None) -> None:
        """The node dies: memory gone, unacked messages back to the queue, restart later."""
        self._fault("crash", f"{node.address} {point}")
        self._kill(node, self.rng.randint(50, 2_000))

    def _kill(self, node: Node, restart_in_ms: int) -> None:
        if self.watching:
            for msg in node.unacked.values():
                self.trace.note(self.now, msg.ops, f"{node.address} CRASHED")
        # What the broker had pushed ahead of the batches comes back too (and counts).
        for msg in list(node.queue)[: self.config.prefetch]:
            if msg.ready_ms > self.now:
                break
            msg.returns += 1
            if msg.returns > self.config.delivery_limit:
                node.queue.remove(msg)
                self._dead_letter(node, msg, "delivery_limit")
        self._return(node, list(node.unacked.values()))
        node.unacked.clear()
        node.up = False
        node.core = None
        node.engine = None
        node.scheduled = False
        node.epoch += 1
        self._at(self.now + restart_in_ms, _RESTART, node, node.epoch)

    def _restart(self, node: Node) -> None:
        self._build(node)
        node.up = True
        node.epoch += 1
        self.trace.fault(self.now, "restart", node.address)
        engine = node.engine
        assert engine is not None
        if node is self.clearinghouse:
            # What the shell does on start, before it consumes: resume, publish, confirm.
            step = engine.start(self.now, node.core.resume)
            self._events_of(node, step.events)
            if not self._publish_grouped(node, step.sends):
                self._crash_during(node, "publishing its resume")  # the shell's start fails
                return
            engine.published(step, True)
        else:
            self.checker.books(node.code, self.now)
        self._at(self.now + node.tick_ms, _TICK, node, node.epoch)
        if node.queue:
            self._wake(node, node.queue[0].ready_ms)

    # --- a hostile participant ---

    def _forge(self) -> None:
        """One forged message, sent with a participant's real credentials."""
        if not self.faults_active:
            return
        rng = self.rng
        codes = list(self.region_nodes)
        liar, victim = rng.sample(codes, 2) if len(codes) > 1 else (codes[0], codes[0])
        persons = [p for p in self.population.persons if p.region == victim]
        person = rng.choice(persons).psn_no if persons else "nobody"
        sent = self.requests[: max(1, self._next_request)]
        real = rng.choice(sent).transfer_id
        self._forged += 1
        fresh = f"forged-{self._forged}"
        big = 10**9
        hub_ops = (Reserve(fresh, person, big, liar, 60_000, Flow.COPAY), Commit(fresh))
        forgeries: list[tuple[Participant | None, str, tuple[Operation, ...]]] = [
            # A region addressing another region as if it were the hub (the broker refuses).
            (region(liar), region_address(victim), hub_ops),
            # A client sending what only the hub may send (the region refuses).
            (FORGER, region_address(victim), hub_ops),
            (FORGER, region_address(victim), (Credit(real, big, liar, Flow.COPAY, person, 0, ""),)),
            # A replayed Commit and an Abort of a genuine transfer.
            (FORGER, region_address(victim), (Commit(real), Abort(real))),
            # A region answering for another region (the clearinghouse refuses).
            (
                region(liar),
                CLEARINGHOUSE,
                (ReserveResult(real, victim, big), CommitResult(real, victim, big)),
            ),
            (region(liar), CLEARINGHOUSE, (RequestAid(fresh, person, victim, big),)),
            # Nobody's message (the broker's guest).
            (None, region_address(victim), (Commit(real),)),
        ]
        sender, address, ops = rng.choice(forgeries)
        self._fault("hostile", f"{sender or 'guest'} -> {address}")
        self.stats.forgeries += 1
        self._send(address, ops, sender, hostile=True)
        self._at(self._after(self.rates.hostile), _FORGE)

    # --- crash loops ---

    def _crash_loop(self) -> None:
        """Kill a service several times, each soon after it comes back (a crash loop)."""
        if not self.faults_active:
            return
        nodes = self._service_nodes()
        # The clearinghouse as often as all regions together: its loop hurts most.
        node = self.clearinghouse if self.rng.random() < 0.5 else self.rng.choice(nodes[1:])
        if node.up and not node.kills_left:
            node.kills_left = self.rng.randint(4, 8) - 1
            self._fault("crash_loop", node.address)
            self._kill(node, self._loop_restart_ms())
        self._at(self._after(self.rates.crash_loop), _CRASH_LOOP)

    def _loop_kill(self, node: Node) -> None:
        if node.up:
            self._fault("crash", f"{node.address} crash loop")
            self._kill(node, self._loop_restart_ms())

    def _loop_restart_ms(self) -> int:
        """A supervisor's restart of a real process (imports, connecting) takes a while,
        so work piles up in the queue for the next start to take in its prefetch."""
        return self.rng.randint(300, 1_500)

    # --- the submitting client ---

    def _plan_arrivals(self) -> None:
        mean_gap = 1_000 / self.config.requests_per_second
        t = 0.0
        for _ in self.requests:
            t += self.rng.expovariate(1 / mean_gap)
            self._arrivals.append(int(t) + 1)

    def _client(self) -> None:
        now = self.now
        out: list[Outgoing] = []
        requests = self.requests
        while self._next_request < len(requests) and self._arrivals[self._next_request] <= now:
            request = requests[self._next_request]
            self._next_request += 1
            out.append(Outgoing(region_address(request.region), request.op))
            if self.config.client_retry_ms:
                self._retries.append((now + self.config.client_retry_ms, request.transfer_id))
        retries = self._retries
        while retries and retries[0][0] <= now:
            _, tid = retries.popleft()
            if tid in self.outcomes:
                continue
            # No answer yet: send the same request again (the region deduplicates by id).
            self.stats.client_retries += 1
            self.trace.fault(now, "client_retry", tid)
            request = self._by_id[tid]
            out.append(Outgoing(region_address(request.region), request.op))
            retries.append((now + self.config.client_retry_ms, tid))
        self._publish(None, out)
        upcoming = []
        if self._next_request < len(requests):
            upcoming.append(self._arrivals[self._next_request])
        if retries:
            upcoming.append(retries[0][0])
        if upcoming:
            self._at(max(now + 1, min(upcoming)), _CLIENT)

    def _outside_receive(self, node: Node, batch: list[Message]) -> None:
        """The submitter's and the operator's queues: outcomes and reports arrive."""
        for msg in batch:
            self.trace.delivered(self.now, node.address, msg.text)
            if self.watching:
                self.trace.note(self.now, msg.ops, f"{node.address} received")
            for op in msg.ops:
                if not isinstance(op, BillOutcome):
                    self.replies.append(op)
                    continue
                self.latest[op.transfer_id] = op
                first = self.outcomes.get(op.transfer_id)
                if first is None:
                    self.outcomes[op.transfer_id] = op
                elif first != op:
                    self.conflicts.append((first, op))

    def _close_window(self) -> None:
        """The operator closes the clearing window (the regions then reconcile it)."""
        self._windows += 1
        self._operator(CloseWindow(f"close-{self._windows}", OPERATOR))

    def _operator(self, op: Operation) -> None:
        self.trace.fault(self.now, "operator", repr(op))
        self._send(CLEARINGHOUSE, (op,), self.operator.participant)

    # --- fault episodes ---

    def _partition(self) -> None:
        """Swizzle: cut a few regions from the broker one by one, heal in random order."""
        if not self.faults_active:
            return
        if not self._partition_running:
            codes = list(self.region_nodes)
            victims = self.rng.sample(codes, self.rng.randint(1, min(3, len(codes) - 1)))
            self._partition_running = True
            t = self.now
            for code in victims:
                self._at(t, _CUT, self.region_nodes[code])
                t += self.rng.randint(50, 1_000)
            t += self.rng.randint(500, 8_000)
            for code in self.rng.sample(victims, len(victims)):
                self._at(t, _HEAL_NODE, self.region_nodes[code])
                t += self.rng.randint(50, 1_000)
            self._at(t, _HEAL_NODE, None)  # the episode is over
        self._at(self._after(self.rates.partition), _PARTITION)

    def _cut(self, node: Node) -> None:
        if not self.faults_active or node.partitioned:
            return
        self._fault("partition", node.address)
        node.partitioned = True

    def _heal_node(self, node: Node | None) -> None:
        if node is None:
            self._partition_running = False
            return
        if node.partitioned:
            node.partitioned = False
            self.trace.fault(self.now, "healed", node.address)
            if node.queue:
                self._wake(node, node.queue[0].ready_ms)

    def _disable(self) -> None:
        if not self.faults_active:
            return
        candidates = sorted(self._enabled - self._disabled_by_fault)
        if candidates:
            code = self.rng.choice(candidates)
            self._fault("disable", code)
            self._disabled_by_fault.add(code)
            self._operator(SetRegionEnabled(code, False))
            self._at(self.now + self.rng.randint(500, 5_000), _ENABLE, code)
        self._at(self._after(self.rates.disable), _DISABLE)

    def _heal(self) -> None:
        """Faults stop; crashed nodes restart, cut regions come back, disabled are enabled."""
        self.faults_active = False
        self.phase = "liveness"
        self.healed_at = self.now
        self.trace.fault(self.now, "heal", "")
        for node in self._service_nodes():
            node.kills_left = 0
            if not node.up:
                self._restart(node)
        cut = [n for n in self.region_nodes.values() if n.partitioned]
        for node in self.rng.sample(cut, len(cut)):
            self._heal_node(node)
        for code in sorted(self._disabled_by_fault):
            self._operator(SetRegionEnabled(code, True))
        self._disabled_by_fault.clear()
        self._at(self.now + self.config.liveness_limit_ms, _DEADLINE, None, self._deadline)

    # --- checks ---

    def _check(self) -> None:
        started = perf_counter()
        self._check_now()
        self.stats.check_seconds += perf_counter() - started

    def _check_now(self) -> None:
        now = self.now
        checker = self.checker
        if self.dirty:  # a quiet second (waiting on timers) changes no money: skip it
            for tid in sorted(self.dirty):
                checker.transfer(tid, now)
            self.dirty.clear()
            checker.aggregates(now)
        self._checks_done += 1
        every = self._full_every
        if self.phase == "faults" and every and self._checks_done % every == 0:
            for code in self.region_nodes:
                checker.books(code, now)
        if self.progress is not None:
            self.progress(self._next_request, len(self.outcomes), len(self.requests), self.phase)
        if self.phase == "liveness" and self._quiet():
            if self._final_window or not self.config.window_ms:
                self.quiet_at = now
                self.done = True
                return
            # Quiet: close one last window so every commit is cleared, then wait for the
            # regions to reconcile it.
            self._final_window = True
            self._close_window()
        self._at(now + self.config.check_interval_ms, _CHECK)

    def _quiet(self) -> bool:
        """Every request answered, nothing in flight, unfinished, held or unreconciled."""
        if len(self.outcomes) < len(self.requests) or self._next_request < len(self.requests):
            return False
        if any(n.queue for n in self.nodes.values()):
            return False
        if any(kind == _RELEASE for _, _, kind, _, _ in self._events):
            return False
        ch = _sql(self.clearinghouse)
        if views.unfinished_transfers(ch):
            return False
        if views.unreconciled_count(ch, len(self.region_nodes)):
            return False
        return not any(views.pending_holds(_sql(n)) for n in self.region_nodes.values())

    def _final(self) -> None:
        started = perf_counter()
        for tid in sorted(self.dirty):
            self.checker.transfer(tid, self.now)
        self.dirty.clear()
        self.checker.aggregates(self.now)
        self.checker.final(self.now, self.outcomes, self.conflicts)
        if self.stats.forgeries_refused != self.stats.forgeries:
            self.checker.fail(
                "forgeries refused",
                f"{self.stats.forgeries} forged messages, {self.stats.forgeries_refused} refused",
                "",
                self.now,
            )
        self.stats.check_seconds += perf_counter() - started


def _db(node: Node) -> Database:
    assert node.db is not None
    return node.db


def _sql(node: Node) -> Any:
    return _db(node).connection
