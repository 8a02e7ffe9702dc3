"""Poison messages on a service queue: dead-lettered, counted, and the service goes on."""

from __future__ import annotations

import msgpack
import pytest
from aio_pika import Message

from broker.connection import connect
from broker.testing import TrackedTopology, dead_letter_messages
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.reasons import COMMITTED
from tests.integration.conftest import CHENGDU, World, eventually, region_store, sample

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]

GARBAGE = b"\xc1\x00 not msgpack at all"
ENVELOPE = {"id": "x", "type": "gongji.operations", "v": 1, "from": "t", "at": 0, "ops": []}
UNKNOWN_TYPE = msgpack.packb({**ENVELOPE, "type": "gongji.nonsense", "ops": [["commit", "t"]]})
FUTURE_VERSION = msgpack.packb({**ENVELOPE, "v": 99, "ops": [["commit", "t"]]})


def dead_letters(service: str, reason: str) -> float:
    return sample("gongji_dead_letters_total", service=service, reason=reason)


async def test_poison_is_dead_lettered_and_the_services_keep_serving(
    world: World, topology: TrackedTopology, amqp_url: str
) -> None:
    # The broker's own user: poison is refused before anyone asks who sent it.
    connection = await connect(amqp_url, name=f"{topology.namespace}-poisoner")
    region, hub = f"region-{CHENGDU}", "clearinghouse"
    counted = [
        (region, "MalformedMessage"),
        (region, "UnknownMessageType"),
        (region, "UnsupportedVersion"),
        (hub, "MalformedMessage"),
    ]
    before = {key: dead_letters(*key) for key in counted}
    poison = [
        (region_address(CHENGDU), GARBAGE),
        (region_address(CHENGDU), UNKNOWN_TYPE),
        (region_address(CHENGDU), FUTURE_VERSION),
        (CLEARINGHOUSE, GARBAGE),
    ]
    channel = connection.channel()
    await channel.initialize()
    try:
        for address, body in poison:
            # Straight into the queue through the default exchange: no codec on the way.
            await channel.default_exchange.publish(
                Message(body), routing_key=topology.queue_for(address)
            )
    finally:
        await channel.close()

    dead = await dead_letter_messages(connection, topology, expect=len(poison), timeout=10)
    await connection.close()

    assert sorted(dead) == sorted(body for _, body in poison)
    # Both services still work: a bill through Chengdu and the clearinghouse commits.
    outcome = await world.pay(CHENGDU, "B1", 2_500)
    assert (outcome.outcome, outcome.paid_fen) == (COMMITTED, 2_500)
    await eventually(
        lambda: all(dead_letters(*key) - before[key] == 1 for key in counted),
        "each poison message counted once in gongji_dead_letters_total",
    )
    await world.settle_and_check()


def submit(beneficiary: str) -> bytes:
    """A well-formed envelope with one SubmitBill, through the default exchange."""
    op = ["submit_bill", "huge-1", beneficiary, 1_000, "client.it"]
    return msgpack.packb({**ENVELOPE, "ops": [op]})


async def test_an_oversized_or_out_of_format_message_is_refused_and_echoed_nowhere(
    world: World, topology: TrackedTopology, amqp_url: str
) -> None:
    """A 10 MB beneficiary number (well-formed msgpack, a real operation) once went into a
    region's database and came back in a 10 MB outcome; now it is refused before any state
    changes, dead-lettered and counted, and the region goes on."""
    region = f"region-{CHENGDU}"
    before = sample("gongji_rejected_messages_total", service=region, reason="OutOfBounds")
    oversized = submit("9" * (10 * 1024 * 1024))
    out_of_format = submit("B1; DROP TABLE bills")
    connection = await connect(amqp_url, name=f"{topology.namespace}-oversize")
    try:
        channel = connection.channel()
        await channel.initialize()
        for body in (oversized, out_of_format):
            await channel.default_exchange.publish(
                Message(body), routing_key=topology.queue_for(region_address(CHENGDU))
            )
        await channel.close()
        dead = await dead_letter_messages(connection, topology, expect=2, timeout=15)
    finally:
        await connection.close()
    assert sorted(map(len, dead)) == sorted([len(oversized), len(out_of_format)])
    await eventually(
        lambda: (
            sample("gongji_rejected_messages_total", service=region, reason="OutOfBounds")
            == before + 2
        ),
        "both counted as refused (OutOfBounds)",
    )
    with region_store(world.cluster, CHENGDU) as store:
        assert store.bill("huge-1") is None
    assert world.client.surplus_outcomes == 0  # nothing was answered, let alone echoed
    outcome = await world.pay(CHENGDU, "B1", 2_500)
    assert (outcome.outcome, outcome.paid_fen) == (COMMITTED, 2_500)
