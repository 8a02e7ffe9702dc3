"""Where the simulator meets the real cores outside their step engine.

Every step of a running service goes through ``broker.engine.StepEngine``. Only these
few places touch a core or its store directly: building a core and its engine over the
node's database (at start and after a crash), the set-up's direct handling, the
clearinghouse's ``resume`` at a restart, and
handing the cores' events to the checker.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.engine import Step, StepEngine
from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.core import ClearinghouseCore
from clearinghouse.settlement import SettlementRule
from clearinghouse.store import ClearinghouseStore
from contracts.effects import Anomaly, AnyEvent, AtRegion, Disagreed, Outgoing, WindowClosed
from contracts.identifiers import CLEARINGHOUSE, mailbox_route
from contracts.operations import Operation
from contracts.permissions import refusal
from gongji.sim.broker import Message
from gongji.sim.checker import Checker
from gongji.sim.config import SimConfig
from gongji.sim.node import Node, database
from gongji.sim.planted import PLANTS, EngineFactory, RegionFactory
from regions.core import RegionCore
from regions.host import MailboxCore, mailbox_cores
from regions.store import RegionStore
from storage.sqlite import Databases


class CoreBuilder:
    """Builds each service's core and step engine: the real ones, or a planted bug's."""

    def __init__(self, config: SimConfig, settings: CoordinatorSettings) -> None:
        plant = PLANTS[config.plant] if config.plant else None
        self.region_factory: RegionFactory = (plant.region if plant else None) or RegionCore
        self.engine_factory: EngineFactory = (plant.engine if plant else None) or StepEngine
        self.coordinator_class: type[TransferCoordinator] = (
            plant.coordinator if plant else None
        ) or TransferCoordinator
        self.settings = settings
        self.rule = SettlementRule(config.advance_fen)
        self.pipeline_depth = config.pipeline_depth
        self.mailboxes = config.mailboxes

    def build(self, node: Node) -> None:
        """A fresh core and engine over the node's database (at start, after a crash).
        A mailbox's engine is built over its regions' cores: build them first."""
        if node.hosted:
            self._build_mailbox(node)
            return
        db = database(node)
        mailbox = None
        if node.address == CLEARINGHOUSE:
            ch_store = ClearinghouseStore(db)
            node.core = ClearinghouseCore(
                ch_store,
                self.settings,
                self.coordinator_class,
                rule=self.rule,
            )
        else:
            store = RegionStore(db)
            node.core = self.region_factory(node.code, store)
            node.books = store.books
        if node.address == CLEARINGHOUSE and self.mailboxes:
            mailbox = mailbox_route
        node.engine = self.engine_factory(
            node.core, db, pipeline_depth=self.pipeline_depth, authorize=refusal, mailbox=mailbox
        )
        node.confirmed = {}

    def _build_mailbox(self, node: Node) -> None:
        """A province host's mailbox: the host's own code (``regions.host``)."""
        databases = Databases({n.code: database(n) for n in node.hosted})
        hosted = mailbox_cores({n.code: n.core for n in node.hosted}, databases)
        node.core = MailboxCore(hosted)
        node.engine = self.engine_factory(
            node.core,
            databases,
            pipeline_depth=self.pipeline_depth,
            authorize=refusal,
            hosted=hosted,
        )
        node.confirmed = {}


def handle_directly(
    node: Node, ops: Sequence[Operation], checker: Checker, now_ms: int
) -> list[Outgoing]:
    """The set-up's short way: the node's core handles ``ops`` in one transaction."""
    with database(node).transaction():
        results = [node.core.handle(op, now_ms) for op in ops]
    pending: list[Outgoing] = []
    for result in results:  # committed: its events happened
        pending += result.outgoing
        report_events(checker, node, result.events, now_ms)
    return pending


def resume(node: Node, now_ms: int) -> Step[Message]:
    """The clearinghouse's start, as its service runs it: ``resume`` in the engine's step."""
    engine = node.engine
    assert engine is not None
    step: Step[Message] = engine.start(now_ms, node.core.resume)
    return step


def report_events(checker: Checker, node: Node, events: Sequence[AnyEvent], now_ms: int) -> None:
    """The cores' events the checker follows: anomalies, disagreements, closed windows."""
    for event in events:
        if isinstance(event, AtRegion):
            event = event.event  # a hosted region's, in its host's mailbox
        if isinstance(event, Anomaly):
            checker.anomaly(node.address, event.transfer_id, event.what, now_ms)
        elif isinstance(event, Disagreed):
            checker.disagreed(event.region, event.transfer_id, event.kind, event.window, now_ms)
        elif isinstance(event, WindowClosed):
            checker.window_closed(event.window, event.positions, now_ms)
