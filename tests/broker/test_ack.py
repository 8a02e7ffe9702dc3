"""At-least-once: a delivery is only gone once acked after the caller committed."""

from __future__ import annotations

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker import Inbox, Publisher
from broker.testing import TrackedTopology, collect, queue_depth
from tests.broker.ops import REGION_A, commits

pytestmark = pytest.mark.broker


@pytest.mark.timeout(30)
async def test_unacked_delivery_is_redelivered_to_a_new_inbox(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    first_inbox = await Inbox.open(connection, topology, REGION_A)
    await publisher.publish({REGION_A: commits(3)})
    [first] = await collect(first_inbox, 1)
    assert not first.message.redelivered

    # The "service" dies before committing: its channel closes without an ack.
    await first_inbox.close()
    await first_inbox.ack([first])  # too late, and harmless

    second_inbox = await Inbox.open(connection, topology, REGION_A)
    [again] = await collect(second_inbox, 1)
    assert again.envelope == first.envelope
    assert again.message.redelivered
    await second_inbox.ack([again])
    await second_inbox.ack([again])  # double ack is skipped, not an error
    await second_inbox.close()
    await publisher.close()
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0


@pytest.mark.timeout(30)
async def test_ack_through_settles_a_batch_with_one_frame(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    inbox = await Inbox.open(connection, topology, REGION_A)
    for op in commits(5):
        await publisher.publish({REGION_A: [op]})
    batch = await collect(inbox, 5)
    assert len(batch) == 5

    await inbox.ack_through(batch)
    assert all(d.settled for d in batch)
    await inbox.ack_through(batch)  # settled already: skipped, not a channel error
    await inbox.ack(batch)

    # Closing without acks would return anything unsettled to the queue: nothing is.
    await inbox.close()
    await publisher.close()
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0


@pytest.mark.timeout(30)
async def test_ack_through_settles_every_earlier_unsettled_delivery_but_not_a_requeued_one(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    """Why the shell settles its batches in order: a multiple ack covers every lower
    delivery tag still unsettled; one requeued before it is redelivered all the same."""
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    inbox = await Inbox.open(connection, topology, REGION_A)
    for op in commits(4):
        await publisher.publish({REGION_A: [op]})
    _first, requeued, _covered, last = await collect(inbox, 4)

    await inbox.retry_later(requeued)
    await inbox.ack_through([last])

    [again] = await collect(inbox, 1)
    assert again.envelope == requeued.envelope
    assert again.message.redelivered
    await inbox.ack_through([again])
    await inbox.close()
    await publisher.close()
    # The first two were never acked on their own, yet nothing is left to redeliver.
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0
