"""Who is on the simulated network: a node per queue, and the network that holds them.

A node is a consumer of one queue: a region or the clearinghouse (a service: its core,
step engine and database) or an outside party (the submitting client, the operator, a
forger), which only receives. The broker keeps its queue and unacked messages here too.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from broker.engine import StepEngine
from contracts.identifiers import CLEARINGHOUSE, client_address, region_address
from contracts.participants import HUB, Participant, admin, client, region
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


class Network:
    """Every node by address: the clearinghouse, the regions, the submitting client, the
    operator and the forger; each service over its own in-memory database."""

    def __init__(self, config: SimConfig, regions: tuple[RegionSpec, ...]) -> None:
        self.nodes: dict[str, Node] = {}
        self.clearinghouse = self._add(
            Node(CLEARINGHOUSE, "", open_database(":memory:"), config.clearinghouse_tick_ms, HUB)
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

    def _add(self, node: Node) -> Node:
        self.nodes[node.address] = node
        return node

    def services(self) -> list[Node]:
        """The clearinghouse, then the regions."""
        return [self.clearinghouse, *self.region_nodes.values()]


def database(node: Node) -> Database:
    """A service's database."""
    assert node.db is not None
    return node.db


def connection(node: Node) -> Any:
    """A service's SQLite connection (the invariant checks read it directly)."""
    return database(node).connection
