"""Publishing with confirms and consuming with Inbox against a real RabbitMQ."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker import Inbox, Publisher, Unroutable
from broker.testing import TrackedTopology, collect, queue_depth
from contracts.operations import Operation
from tests.broker.ops import REGION_A, REGION_B, bill, commits

pytestmark = pytest.mark.broker


@pytest.mark.timeout(30)
async def test_batch_to_two_addresses_arrives_intact(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox_a = await Inbox.open(connection, topology, REGION_A)
    inbox_b = await Inbox.open(connection, topology, REGION_B)
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    ops_a: list[Operation] = [bill("t1"), *commits(3)]
    ops_b: list[Operation] = commits(2, prefix="u")

    await publisher.publish({REGION_A: ops_a, REGION_B: ops_b})

    [got_a] = await collect(inbox_a, 1)
    [got_b] = await collect(inbox_b, 1)
    assert list(got_a.envelope.operations) == ops_a
    assert list(got_b.envelope.operations) == ops_b
    for got in (got_a, got_b):
        assert got.envelope.sender == "clearinghouse"
        assert got.message.message_id == got.envelope.message_id
        assert len(got.envelope.message_id) == 32  # uuid4 hex
    assert got_a.envelope.message_id != got_b.envelope.message_id
    await inbox_a.ack([got_a])
    await inbox_b.ack([got_b])
    await inbox_a.close()
    await inbox_b.close()
    await publisher.close()
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0
    assert await queue_depth(connection, topology.queue_for(REGION_B)) == 0


@pytest.mark.timeout(60)
async def test_many_envelopes_published_concurrently_are_all_confirmed(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(
        connection, topology, "clearinghouse", max_operations_per_message=10
    )
    ops = commits(2_000)

    # 200 envelopes in one call, plus 20 calls at once: every confirm must come back.
    await publisher.publish({REGION_A: ops})
    await asyncio.gather(
        *(publisher.publish({REGION_A: commits(10, prefix=f"c{i}-")}) for i in range(20))
    )

    deliveries = await collect(inbox, 220, timeout=30)
    assert len(deliveries) == 220
    assert all(len(d.envelope.operations) == 10 for d in deliveries)
    received = {op for d in deliveries for op in d.envelope.operations}
    assert set(ops) <= received
    assert len(received) == 2_200
    await inbox.ack(deliveries)
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_operations_are_split_into_chunks(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(
        connection, topology, "clearinghouse", max_operations_per_message=200
    )
    ops = commits(450)

    await publisher.publish({REGION_A: ops})

    deliveries = await collect(inbox, 3)
    sizes = sorted(len(d.envelope.operations) for d in deliveries)
    assert sizes == [50, 200, 200]
    assert {op for d in deliveries for op in d.envelope.operations} == set(ops)
    await inbox.ack(deliveries)
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_empty_batches_send_nothing(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    await publisher.publish({})
    await publisher.publish({REGION_A: []})  # no queue: would be Unroutable if sent
    await publisher.close()


@pytest.mark.timeout(30)
async def test_address_without_queue_is_unroutable(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(connection, topology, "clearinghouse")

    with pytest.raises(Unroutable) as raised:
        await publisher.publish({"region.999999": commits(1)})
    assert raised.value.address == "region.999999"
    assert "region.999999" in str(raised.value)

    # Mixed: the routable envelope still goes out, the call still fails.
    with pytest.raises(Unroutable):
        await publisher.publish({REGION_A: commits(1), "region.999999": commits(1)})
    [delivery] = await collect(inbox, 1)
    await inbox.ack([delivery])

    # The channel survives a return: publishing goes on.
    await publisher.publish({REGION_A: commits(1, prefix="after")})
    [after] = await collect(inbox, 1)
    assert after.envelope.operations[0] == commits(1, prefix="after")[0]
    await inbox.ack([after])
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_client_queue_receives_replies(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, "client.test", client=True)
    publisher = await Publisher.open(connection, topology, REGION_A)

    await publisher.publish({"client.test": [bill("t9")]})

    [delivery] = await collect(inbox, 1)
    assert delivery.envelope.sender == REGION_A
    await inbox.ack([delivery])
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(30)
async def test_next_batch_times_out_empty_and_respects_max(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(connection, topology, REGION_A)
    publisher = await Publisher.open(
        connection, topology, "clearinghouse", max_operations_per_message=1
    )

    assert await inbox.next_batch(10, timeout=0.05) == []

    await publisher.publish({REGION_A: commits(5)})
    first = await collect(inbox, 5)
    await inbox.ack(first)
    await publisher.publish({REGION_A: commits(5)})
    batch = await inbox.next_batch(2, timeout=5)
    assert 1 <= len(batch) <= 2
    rest = await collect(inbox, 5 - len(batch))
    await inbox.ack([*batch, *rest])

    await inbox.close()
    assert await inbox.next_batch(10, timeout=None) == []
    await publisher.close()
