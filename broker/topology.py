"""Names and declarations of gongji's exchanges and queues.

One durable topic exchange routes by destination address (``region.420100``,
``clearinghouse``, ``client.xyz``; each queue is bound by its exact address). A topic
exchange, not a direct one, because RabbitMQ's topic permissions apply to topic
exchanges only: they let the broker itself refuse a routing key a user may not publish
to (a region addressing another region), see ``broker.users``. Service queues are
quorum queues that dead-letter poison and endlessly failing messages to one dead-letter
queue per namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import aiormq
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue

NAMESPACE_RULE = "1 to 40 of a-z, 0-9, '-' and '_', starting with a letter or digit"
"""What a namespace may be, in words (for help texts and errors)."""
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is a valid one, else ValueError saying what is allowed.

    Kept to plain ASCII and short: it prefixes every exchange and queue name, appears in
    file names and metrics, and RabbitMQ caps names at 255 bytes.
    """
    if _NAMESPACE.fullmatch(namespace):
        return namespace
    shown = (
        repr(namespace)
        if len(namespace) <= 48
        else f"{namespace[:24]!r}... ({len(namespace)} characters)"
    )
    raise ValueError(f"{shown} is not a namespace ({NAMESPACE_RULE})")


MAILBOXES_ENV = "GONGJI_MAILBOXES"
"""``province``: the clearinghouse sends a region's operations to its province host's
mailbox (``province.420000``), one envelope per province, and each province host consumes
its mailbox; ``region`` (the default): to each region's own queue. A deployment-wide
choice: ``province`` needs every region hosted by its province's host (``gongji cluster
up``'s default sets it)."""
MAILBOXES = ("region", "province")


def province_mailboxes(environ: dict[str, str] | None = None) -> bool:
    """Whether ``GONGJI_MAILBOXES`` asks for province mailboxes (ValueError if unknown)."""
    raw = (os.environ if environ is None else environ).get(MAILBOXES_ENV, "").strip()
    if raw not in ("", *MAILBOXES):
        raise ValueError(f"{MAILBOXES_ENV}={raw!r} is not one of {', '.join(MAILBOXES)}")
    return raw == "province"


@dataclass(frozen=True)
class Topology:
    """Where everything lives on the broker; ``namespace`` isolates tests and demos."""

    namespace: str = "gongji"
    delivery_limit: int = 100
    """Quorum ``x-delivery-limit``: a message returned more often than this is dead-lettered.

    A backstop only, far above any crash loop: the broker counts every return, also of
    messages handed back because their consumer died (a kill hands back a whole
    prefetch), and those are healthy. A message that fails in a service's own handling
    is dead-lettered by the service after a few tries (``broker.engine``)."""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        if self.delivery_limit < 0:
            raise ValueError(f"delivery_limit must be >= 0: {self.delivery_limit}")

    @property
    def exchange(self) -> str:
        """The durable topic exchange every envelope is published to."""
        return self.namespace

    @property
    def dead_letter_exchange(self) -> str:
        """The exchange rejected and over-delivered messages go to."""
        return f"{self.namespace}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        """The one queue holding every dead-lettered message of the namespace."""
        return f"{self.namespace}.dead-letter"

    def queue_for(self, address: str) -> str:
        """The queue name of a destination address (its routing key is the address)."""
        if not address:
            raise ValueError("an address is non-empty")
        return f"{self.namespace}.{address}"


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Declare the exchange, the dead-letter exchange and the dead-letter queue."""
    await channel.declare_exchange(topology.exchange, ExchangeType.TOPIC, durable=True)
    # Fanout: dead-lettered messages keep their original routing key (the address),
    # and all of them must land in the one dead-letter queue.
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.FANOUT, durable=True
    )
    dlq = await channel.declare_queue(
        topology.dead_letter_queue,
        durable=True,
        arguments={"x-queue-type": "quorum"},
    )
    await dlq.bind(dlx, routing_key="")


class TopologyMissing(RuntimeError):
    """The namespace's exchanges are not there, and this user may not declare them."""


async def ensure_topology(connection: AbstractConnection, topology: Topology) -> None:
    """Make sure the namespace's exchanges and dead-letter queue exist.

    A passive check first, which needs no permission; they are declared only when missing,
    which only an operator (or the broker's administrator) may do. A service may not
    configure them, so it cannot delete them either: the operator declares the topology
    (``gongji cluster up``, compose's definitions) before the services start.
    """
    channel = await connection.channel()
    try:
        await channel.declare_exchange(topology.exchange, passive=True)
        await channel.declare_exchange(topology.dead_letter_exchange, passive=True)
        await channel.declare_queue(topology.dead_letter_queue, passive=True)
        return
    except aiormq.exceptions.ChannelNotFoundEntity:
        pass  # the channel is closed by now; declare on a new one
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
    channel = await connection.channel()
    try:
        await declare_topology(channel, topology)
    except aiormq.exceptions.ChannelAccessRefused:
        raise TopologyMissing(
            f"namespace {topology.namespace!r} has no exchange yet, and this broker user may "
            "not declare it: start the cluster first (gongji cluster up, or compose's broker)"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def declare_service_queue(
    channel: AbstractChannel, topology: Topology, address: str
) -> AbstractQueue:
    """Declare (idempotently) and bind the quorum queue of a service address."""
    queue = await channel.declare_queue(
        topology.queue_for(address),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-delivery-limit": topology.delivery_limit,
        },
    )
    await queue.bind(topology.exchange, routing_key=address)
    return queue


async def declare_client_queue(
    channel: AbstractChannel, topology: Topology, address: str
) -> AbstractQueue:
    """Declare (idempotently) and bind the classic queue a client receives outcomes on."""
    queue = await channel.declare_queue(
        topology.queue_for(address),
        durable=True,
        # Classic queues have no delivery limit, but poison still goes to the DLQ.
        arguments={
            "x-queue-type": "classic",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
        },
    )
    await queue.bind(topology.exchange, routing_key=address)
    return queue


async def delete_namespace(
    channel: AbstractChannel, topology: Topology, addresses: Iterable[str]
) -> None:
    """Delete the queues of ``addresses``, the dead-letter queue and both exchanges."""
    for address in addresses:
        await channel.queue_delete(topology.queue_for(address))
    await channel.queue_delete(topology.dead_letter_queue)
    await channel.exchange_delete(topology.exchange)
    await channel.exchange_delete(topology.dead_letter_exchange)
