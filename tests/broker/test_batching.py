"""BatchingSender: many single sends share envelopes; a lone send still goes out."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker import BatchingSender, Delivery, Inbox, Publisher, Unroutable
from broker.testing import TrackedTopology, collect
from contracts.operations import Operation
from tests.broker.ops import REGION_A, REGION_B, bill, commits

pytestmark = pytest.mark.broker


@pytest.mark.timeout(30)
async def test_concurrent_sends_share_few_envelopes(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(connection, topology, "client.test")
    sender = BatchingSender(publisher, max_operations=100)
    ops = commits(500)

    await asyncio.gather(*(sender.send(REGION_A, op) for op in ops))

    received: list[Operation] = []
    deliveries: list[Delivery] = []
    async with asyncio.timeout(20):
        while len(received) < len(ops):
            batch = await collect(inbox, 1)
            deliveries += batch
            received += [op for d in batch for op in d.envelope.operations]
    assert sorted(map(str, received)) == sorted(map(str, ops))
    assert len(deliveries) < len(ops)
    assert all(len(d.envelope.operations) <= 100 for d in deliveries)
    await inbox.ack(deliveries)
    await sender.close()
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_lone_send_completes_at_idle(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(connection, topology, "client.test")
    sender = BatchingSender(publisher)

    # Nothing else is sent: the linger, not a full buffer, must flush it.
    async with asyncio.timeout(10):
        await sender.send(REGION_A, bill("t1"))

    [delivery] = await collect(inbox, 1)
    assert list(delivery.envelope.operations) == [bill("t1")]
    await inbox.ack([delivery])
    await sender.close()
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_send_raises_what_publish_raised_for_its_own_address_only(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(connection, topology, "client.test")
    sender = BatchingSender(publisher)

    good, bad = await asyncio.gather(
        sender.send(REGION_A, bill("t1")),
        sender.send(REGION_B, bill("t2")),  # no queue bound for REGION_B
        return_exceptions=True,
    )
    assert good is None
    assert isinstance(bad, Unroutable)
    assert bad.address == REGION_B
    [delivery] = await collect(inbox, 1)
    await inbox.ack([delivery])
    await sender.close()
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_close_flushes_buffered_operations(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(connection, topology, "client.test")
    # A linger far beyond the test's bound: only close() can flush these.
    sender = BatchingSender(publisher, linger_ms=60_000)
    sends = [asyncio.create_task(sender.send(REGION_A, op)) for op in commits(3)]
    await asyncio.sleep(0)  # let the sends reach the buffer

    await sender.close()

    async with asyncio.timeout(10):
        await asyncio.gather(*sends)
    [delivery] = await collect(inbox, 1)
    assert len(delivery.envelope.operations) == 3
    await inbox.ack([delivery])
    with pytest.raises(RuntimeError):
        await sender.send(REGION_A, bill("late"))
    await inbox.close()
    await publisher.close()
