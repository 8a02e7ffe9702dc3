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
