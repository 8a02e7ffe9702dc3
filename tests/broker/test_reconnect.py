"""Recovery after the connection to the broker drops.

Two ways to drop only this test's connection: cut it at a TCP proxy in front of the
broker (works anywhere), or have the broker close it by name with ``rabbitmqctl
close_connection`` (only with a local rabbitmqctl).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from yarl import URL

from broker import Delivery, Inbox, Publisher, connect
from broker.testing import (
    TcpProxy,
    TrackedTopology,
    close_connection_by_name,
    collect,
    queue_depth,
)
from tests.broker.ops import REGION_A, commits

pytestmark = pytest.mark.broker


@dataclass
class Flaky:
    """A robust connection the test can drop, and an event set on each reconnect."""

    connection: AbstractRobustConnection
    reconnected: asyncio.Event
    name: str
    proxy: TcpProxy | None

    async def drop(self) -> None:
        """Drop the connection (proxy cut, or broker-side close) without closing it."""
        if self.proxy is not None:
            assert self.proxy.disconnect() == 1
        else:
            await asyncio.to_thread(close_connection_by_name, self.name)

    async def wait_reconnected(self) -> None:
        """Wait (bounded) until aio-pika reconnected and restored every channel."""
        async with asyncio.timeout(30):
            await self.reconnected.wait()
        self.reconnected.clear()


@pytest.fixture(params=["proxy-cut", "broker-close"])
async def flaky(
    request: pytest.FixtureRequest, amqp_url: str, topology: TrackedTopology
) -> AsyncIterator[Flaky]:
    """Closed before ``topology`` deletes the namespace (it would re-declare queues)."""
    proxy = None
    url = amqp_url
    if request.param == "proxy-cut":
        proxy = await TcpProxy.for_url(amqp_url)
        url = proxy.url(amqp_url)
    elif shutil.which("rabbitmqctl") is None or URL(amqp_url).host not in (
        "127.0.0.1",
        "localhost",
    ):
        pytest.skip("broker-side close needs a local rabbitmqctl")
    name = f"gongji-test:flaky:{topology.namespace}"
    conn = await connect(url, name=name, reconnect_interval=0.2)
    reconnected = asyncio.Event()

    def on_reconnect(*_: Any) -> None:
        reconnected.set()

    conn.reconnect_callbacks.add(on_reconnect)
    yield Flaky(conn, reconnected, name, proxy)
    await conn.close()
    if proxy is not None:
        await proxy.close()


@pytest.mark.timeout(60)
async def test_inbox_and_publisher_survive_a_dropped_connection(
    flaky: Flaky, connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(flaky.connection, topology, REGION_A)
    publisher = await Publisher.open(flaky.connection, topology, "clearinghouse")
    await publisher.publish({REGION_A: commits(1, prefix="before")})
    [before] = await collect(inbox, 1)

    await flaky.drop()
    await flaky.wait_reconnected()

    # Acking a delivery of the lost channel must neither raise nor hit the new channel.
    await inbox.ack([before])

    await publisher.publish({REGION_A: commits(1, prefix="after")})
    # The broker requeued "before" when the connection dropped, so both arrive.
    deliveries = await collect(inbox, 2, timeout=20)
    ops = sorted(str(op) for d in deliveries for op in d.envelope.operations)
    assert ops == sorted(str(op) for op in [*commits(1, prefix="before"), *commits(1, "after")])
    redelivered = [d for d in deliveries if d.envelope == before.envelope]
    assert redelivered and redelivered[0].message.redelivered
    await inbox.ack(deliveries)

    # The restored channels still work after those acks: publish and consume once more.
    await publisher.publish({REGION_A: commits(1, prefix="again")})
    [again] = await collect(inbox, 1)
    await inbox.ack([again])

    # And a second drop is survived as well.
    await flaky.drop()
    await flaky.wait_reconnected()
    await publisher.publish({REGION_A: commits(1, prefix="twice")})
    # An ack is fire-and-forget: one sent just before the drop may never reach the
    # broker, so "again" may come once more (at-least-once; handlers are idempotent).
    seen: list[Delivery] = []
    async with asyncio.timeout(20):
        while not any(d.envelope.operations == commits(1, prefix="twice") for d in seen):
            seen += await collect(inbox, 1)
    assert all(
        d.envelope == again.envelope and d.message.redelivered
        for d in seen
        if d.envelope.operations != commits(1, prefix="twice")
    )
    await inbox.ack(seen)

    await inbox.close()
    await publisher.close()
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0


@pytest.mark.timeout(60)
async def test_buffered_deliveries_of_a_lost_channel_are_not_returned(
    flaky: Flaky, connection: AbstractRobustConnection, topology: TrackedTopology
) -> None:
    inbox = await Inbox.open(flaky.connection, topology, REGION_A)
    publisher = await Publisher.open(
        connection, topology, "clearinghouse", max_operations_per_message=1
    )
    await publisher.publish({REGION_A: commits(3)})
    [first] = await collect(inbox, 1)
    # Let the other two reach the inbox's buffer, untaken, before the drop.
    async with asyncio.timeout(10):
        while inbox.buffered < 2:  # noqa: ASYNC110 - polls a gauge; no event to wait on
            await asyncio.sleep(0.01)

    await flaky.drop()
    await flaky.wait_reconnected()

    # Every delivery now comes from the new channel (redelivered), none twice.
    deliveries = await collect(inbox, 3, timeout=20)
    assert len(deliveries) == 3
    assert all(d.message.redelivered for d in deliveries)
    assert len({d.envelope.message_id for d in deliveries}) == 3
    assert first.envelope.message_id in {d.envelope.message_id for d in deliveries}
    await inbox.ack([first, *deliveries])
    await inbox.close()
    await publisher.close()
    assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0
