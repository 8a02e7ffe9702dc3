"""Poison messages, explicit rejects and the quorum delivery limit."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractRobustConnection
from structlog.testing import capture_logs

from broker import Inbox, Publisher
from broker.testing import TrackedTopology, collect, dead_letter_messages, queue_depth
from contracts.codec import decode
from tests.broker.ops import REGION_A, commits

pytestmark = pytest.mark.broker

GARBAGE = b"\xc1 definitely not msgpack"
UNKNOWN_TYPE = msgpack.packb(
    {
        "id": "x1",
        "type": "gongji.unheard-of",
        "v": 1,
        "from": "t",
        "at": 0,
        "ops": [["commit", "t"]],
    }
)


async def publish_raw(
    connection: AbstractRobustConnection, queue_name: str, body: bytes, message_id: str
) -> None:
    """Put bytes straight into a queue via the default exchange (no codec involved)."""
    channel = connection.channel()
    await channel.initialize()
    await channel.default_exchange.publish(
        Message(body, message_id=message_id), routing_key=queue_name
    )
    await channel.close()


@pytest.mark.timeout(30)
async def test_poison_goes_to_dead_letter_queue_and_consumer_keeps_going(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    kinds: list[str] = []
    inbox = await Inbox.open(connection, topology, REGION_A, on_poison=kinds.append)
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    queue_name = topology.queue_for(REGION_A)

    with capture_logs() as logs:
        await publish_raw(connection, queue_name, GARBAGE, "poison-1")
        await publish_raw(connection, queue_name, UNKNOWN_TYPE, "poison-2")
        await publisher.publish({REGION_A: commits(1)})

        [good] = await collect(inbox, 1)
        dead = await dead_letter_messages(connection, topology, expect=2)

    assert list(good.envelope.operations) == commits(1)
    assert sorted(dead) == sorted([GARBAGE, UNKNOWN_TYPE])
    assert sorted(kinds) == ["MalformedMessage", "UnknownMessageType"]
    poison_logs = [entry for entry in logs if entry["event"] == "poison_message"]
    assert sorted(entry["message_id"] for entry in poison_logs) == ["poison-1", "poison-2"]
    for entry in poison_logs:
        assert entry["log_level"] == "warning"
        assert entry["queue"] == queue_name
        assert entry["reason"]
    await inbox.ack([good])
    await inbox.close()
    await publisher.close()
    assert await queue_depth(connection, queue_name) == 0


@pytest.mark.timeout(30)
async def test_poison_on_client_queue_is_dead_lettered_too(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    kinds: list[str] = []
    inbox = await Inbox.open(
        connection, topology, "client.test", on_poison=kinds.append, client=True
    )

    await publish_raw(connection, topology.queue_for("client.test"), GARBAGE, "poison-3")

    assert await dead_letter_messages(connection, topology, expect=1) == [GARBAGE]
    assert kinds == ["MalformedMessage"]
    await inbox.close()


@pytest.mark.timeout(30)
async def test_reject_dead_letters_now_and_logs(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    kinds: list[str] = []
    inbox = await Inbox.open(connection, topology, REGION_A, on_poison=kinds.append)
    publisher = await Publisher.open(connection, topology, "clearinghouse")
    await publisher.publish({REGION_A: commits(1)})
    [delivery] = await collect(inbox, 1)

    with capture_logs() as logs:
        await inbox.reject(delivery, "handler_error")

    [dead] = await dead_letter_messages(connection, topology, expect=1)
    assert decode(dead).message_id == delivery.envelope.message_id
    assert kinds == []  # the caller (the shell) counts what it rejects itself
    assert [entry["reason"] for entry in logs if entry["event"] == "poison_message"] == [
        "handler_error"
    ]
    await inbox.close()
    await publisher.close()


@pytest.mark.timeout(60)
async def test_message_retried_past_delivery_limit_is_dead_lettered(
    connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    limited = dataclasses.replace(topology, delivery_limit=2)  # same tracked addresses
    inbox = await Inbox.open(connection, limited, REGION_A)
    publisher = await Publisher.open(connection, limited, "clearinghouse")
    await publisher.publish({REGION_A: commits(1)})

    # The first delivery plus delivery_limit redeliveries, each one retried.
    message_ids = []
    for _ in range(limited.delivery_limit + 1):
        [delivery] = await collect(inbox, 1)
        message_ids.append(delivery.envelope.message_id)
        await inbox.retry_later(delivery)

    [dead] = await dead_letter_messages(connection, limited, expect=1, timeout=10)
    assert decode(dead).message_id == message_ids[0]
    assert len(set(message_ids)) == 1
    # Bounded check that it is gone from the service queue, not a timing assertion.
    assert await inbox.next_batch(1, timeout=0.5) == []
    await inbox.close()
    await publisher.close()
    assert await queue_depth(connection, limited.queue_for(REGION_A)) == 0
