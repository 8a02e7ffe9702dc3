"""Who is on the simulated network: a node per queue, and the network that holds them.

A node is a consumer of one queue: a region or the clearinghouse (a service: its core,
step engine and database) or an outside party (the submitting client, the operator, a
forger), which only receives. The broker keeps its queue and unacked messages here too.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from broker.engine import StepEngine
from contracts.identifiers import (
    CLEARINGHOUSE,
    client_address,
    mailbox_address,
    province_of,
    region_address,
)
from contracts.participants import HUB, Participant, admin, client, province, region
from gongji.population import RegionSpec
from gongji.sim.config import SimConfig
from regions.books import Books
from storage.sqlite import Database, open_database

if TYPE_CHECKING:
    from gongji.sim.broker import Message

CLIENT = client_address("sim")
OPERATOR = client_address("operator")
SUBMITTER = admin("sim")
"""The submitting client's broker user (an operator too: the demo enrolls through it)."""
FORGER = client("mallory")
"""A plain client that forges messages (the ``hostile`` fault)."""


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
        "host",
        "hosted",
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
        """0: no timers of its own (a region whose host's mailbox runs them)."""
        self.host: Node | None = None
        """A hosted region's mailbox node (its province host), or None."""
        self.hosted: list[Node] = []
        """A mailbox node's regions."""

    def group(self) -> list[Node]:
        """The nodes of its process: a province host's mailbox and regions, or itself."""
        mailbox = self.host or (self if self.hosted else None)
        return [self] if mailbox is None else [mailbox, *mailbox.hosted]


class Network:
    """Every node by address: the clearinghouse, the regions, the submitting client, the
    operator and the forger; each service over its own in-memory database."""

    def __init__(self, config: SimConfig, regions: tuple[RegionSpec, ...]) -> None:
        self.nodes: dict[str, Node] = {}
        self.clearinghouse = self._add(
            Node(CLEARINGHOUSE, "", open_database(":memory:"), config.clearinghouse_tick_ms, HUB)
        )
        self.region_nodes: dict[str, Node] = {}
        self.mailbox_nodes: dict[str, Node] = {}
        for spec in regions:
            node = Node(
                region_address(spec.code),
                spec.code,
                open_database(":memory:"),
                0 if config.mailboxes else config.region_tick_ms,
                # A hosted region speaks through its host's connection.
                province(province_of(spec.code)) if config.mailboxes else region(spec.code),
            )
            self.region_nodes[spec.code] = self._add(node)
            if config.mailboxes:
                self._host(node, config)
        self.client = self._add(Node(CLIENT, "", None, 0, SUBMITTER))
        self.operator = self._add(Node(OPERATOR, "", None, 0, admin("operator")))
        self.forger = self._add(Node(FORGER.address, "", None, 0, FORGER))

    def _host(self, node: Node, config: SimConfig) -> None:
        """Put a region in its province's host (made with the first region)."""
        code = province_of(node.code)
        mailbox = self.mailbox_nodes.get(code)
        if mailbox is None:
            address = mailbox_address(code)
            mailbox = Node(address, "", None, config.region_tick_ms, province(code))
            self.mailbox_nodes[code] = self._add(mailbox)
        mailbox.hosted.append(node)
        node.host = mailbox

    def _add(self, node: Node) -> Node:
        self.nodes[node.address] = node
        return node

    def services(self) -> list[Node]:
        """The clearinghouse, then the regions, then the province mailboxes (after the
        regions: a mailbox's engine is built over its regions' cores)."""
        return [self.clearinghouse, *self.region_nodes.values(), *self.mailbox_nodes.values()]


def database(node: Node) -> Database:
    """A service's database."""
    assert node.db is not None
    return node.db


def connection(node: Node) -> Any:
    """A service's SQLite connection (the invariant checks read it directly)."""
    return database(node).connection
