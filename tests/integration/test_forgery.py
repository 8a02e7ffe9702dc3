"""Participants who cannot lie: every forgery path is refused, counted, and moves nothing.

Each forger uses real credentials of the cluster (a compromised region's broker user, a
plain client's), as an attacker inside the network would. The envelope's own ``from``
field says "clearinghouse" every time: it is never believed. The broker refuses a
routing key the user may not publish to; what it does route, the receiving service
refuses by the authenticated sender (``contracts.permissions``) before any state changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import aio_pika
import pytest

from broker.connection import connect
from broker.publisher import Publisher, PublishError
from broker.testing import dead_letter_messages
from broker.users import Credentials
from contracts.codec import decode
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    Commit,
    CommitResult,
    Credit,
    Flow,
    Operation,
    Reserve,
    ReserveResult,
)
from contracts.participants import Participant, client, region
from regions.store import person_account
from tests.integration.conftest import (
    CHENGDU,
    FORGER,
    SHANGHAI,
    WUHAN,
    World,
    clearinghouse_store,
    eventually,
    region_store,
    sample,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

WHOLE_BALANCE = 50_000
"""A1's balance at Wuhan (the family scenario's co-payer)."""


async def publish_as(
    world: World,
    credentials: Credentials,
    who: Participant | None,
    address: str,
    ops: Sequence[Operation],
    amqp_url: str = "",
) -> None:
    """Publish ``ops`` to ``address`` as ``who`` (None: the broker's guest), with an
    envelope that claims to come from the clearinghouse."""
    url = amqp_url if who is None else credentials.url(who)
    connection = await connect(url, name=f"forger-{who}")
    try:
        publisher = await Publisher.open(connection, world.cluster.topology, CLEARINGHOUSE)
        try:
            await publisher.publish({address: list(ops)})
        finally:
            with contextlib.suppress(Exception):
                await publisher.close()
    finally:
        await connection.close()


def balance(world: World, code: str, psn_no: str) -> tuple[int, int]:
    """(posted, available) of a person's account, read from the region's file."""
    with region_store(world.cluster, code) as store:
        totals = store.books.totals(person_account(psn_no))
        assert totals is not None
        return totals.posted_balance, totals.available


def rejected(service: str, reason: str) -> float:
    return sample("gongji_rejected_messages_total", service=service, reason=reason)


async def refused(
    world: World, service: str, reason: str, before: float, ops: Sequence[Operation]
) -> None:
    """The service refused the forged message: counted, and in the dead-letter queue."""
    await eventually(lambda: rejected(service, reason) >= before + 1, "the refusal counted")
    assert world.cluster.connection is not None
    dead = await dead_letter_messages(world.cluster.connection, world.cluster.topology, expect=1)
    assert [decode(body).operations for body in dead] == [list(ops)]


def forged_reserve_and_commit(transfer_id: str) -> list[Operation]:
    reserve = Reserve(transfer_id, "A1", WHOLE_BALANCE, CHENGDU, 60_000, Flow.COPAY)
    return [reserve, Commit(transfer_id)]


async def test_a_region_cannot_address_another_region_the_broker_refuses_it(
    world: World, credentials: Credentials
) -> None:
    """Shanghai's user publishing the hub's Reserve+Commit to Wuhan: the routing key is
    not one a region may publish to, so the broker itself closes the channel."""
    with pytest.raises(PublishError):
        await publish_as(
            world,
            credentials,
            region(SHANGHAI),
            region_address(WUHAN),
            forged_reserve_and_commit("forged-1"),
        )
    # And a forged Credit to Chengdu's bill the same way.
    with pytest.raises(PublishError):
        await publish_as(
            world,
            credentials,
            region(SHANGHAI),
            region_address(CHENGDU),
            [Credit("forged-2", 10_000, SHANGHAI, Flow.COPAY, "B1", 0, "")],
        )
    assert balance(world, WUHAN, "A1") == (WHOLE_BALANCE, WHOLE_BALANCE)


async def test_a_client_forging_the_hubs_reserve_and_commit_is_refused_by_the_region(
    world: World, credentials: Credentials
) -> None:
    """The broker routes a client to a region; the region refuses an operation only the
    clearinghouse may send, before any state changes."""
    ops = forged_reserve_and_commit("forged-3")
    before = rejected(f"region-{WUHAN}", "forbidden")
    await publish_as(world, credentials, client(FORGER), region_address(WUHAN), ops)
    await refused(world, f"region-{WUHAN}", "forbidden", before, ops)
    assert balance(world, WUHAN, "A1") == (WHOLE_BALANCE, WHOLE_BALANCE)
    with region_store(world.cluster, WUHAN) as store:
        assert store.hold("forged-3") is None


async def test_a_client_forging_a_credit_or_replaying_a_commit_moves_nothing(
    world: World, credentials: Credentials
) -> None:
    # A genuine co-payment first: its Commit is what a replay would copy.
    outcome = await world.pay(CHENGDU, "B1", 20_000, transfer_id="genuine-1")
    assert outcome.reason is None and outcome.paid_fen == 20_000
    wuhan = balance(world, WUHAN, "A1")
    credit = Credit("forged-4", 10_000, WUHAN, Flow.COPAY, "B5", 0, "")
    before = rejected(f"region-{CHENGDU}", "forbidden")
    await publish_as(world, credentials, client(FORGER), region_address(CHENGDU), [credit])
    await refused(world, f"region-{CHENGDU}", "forbidden", before, [credit])
    replay = [Commit("genuine-1"), Commit("genuine-1-again")]
    before = rejected(f"region-{WUHAN}", "forbidden")
    await publish_as(world, credentials, client(FORGER), region_address(WUHAN), replay)
    await refused(world, f"region-{WUHAN}", "forbidden", before, replay)
    assert balance(world, WUHAN, "A1") == wuhan
    ledger = await world.settle_and_check()
    assert ledger.moved_fen == 20_000


async def test_a_region_answering_for_another_region_is_refused_by_the_clearinghouse(
    world: World, credentials: Credentials
) -> None:
    ops: list[Operation] = [
        ReserveResult("forged-5", WUHAN, WHOLE_BALANCE),
        CommitResult("forged-5", WUHAN, WHOLE_BALANCE),
    ]
    before = rejected("clearinghouse", "impersonation")
    await publish_as(world, credentials, region(SHANGHAI), CLEARINGHOUSE, ops)
    await refused(world, "clearinghouse", "impersonation", before, ops)
    with clearinghouse_store(world.cluster) as ch:
        assert ch.transfer("forged-5") is None


async def test_a_message_without_a_participant_user_is_refused(
    world: World, credentials: Credentials, amqp_url: str
) -> None:
    """The broker's own guest (or any user that is no participant) is nobody here."""
    ops = forged_reserve_and_commit("forged-6")
    before = rejected(f"region-{WUHAN}", "unauthenticated")
    await publish_as(world, credentials, None, region_address(WUHAN), ops, amqp_url)
    await refused(world, f"region-{WUHAN}", "unauthenticated", before, ops)
    assert balance(world, WUHAN, "A1") == (WHOLE_BALANCE, WHOLE_BALANCE)


async def test_a_forged_user_id_is_refused_by_the_broker(
    world: World, credentials: Credentials
) -> None:
    """Claiming the clearinghouse's user in the AMQP user_id: RabbitMQ checks it
    against the connection's login and closes the channel."""
    connection = await aio_pika.connect(credentials.url(client(FORGER)))
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(world.cluster.topology.exchange, ensure=False)
        hub_user = f"{world.cluster.topology.namespace}.clearinghouse"
        message = aio_pika.Message(b"x", user_id=hub_user)
        with pytest.raises(Exception, match="user_id"):
            await exchange.publish(message, routing_key=region_address(WUHAN), timeout=10)
    finally:
        await connection.close()
