"""The shell's linger: a fixed one waits its whole length for more deliveries; an
adaptive one (``linger_slice_ms``) goes on only while each slice brings more."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker import Inbox, Publisher
from broker.connection import connect
from broker.inbox import Delivery
from broker.shell import ServiceShell, ShellTuning
from broker.testing import TrackedTopology, cleanup_namespace, unique_namespace
from broker.users import delete_users, provision
from contracts.effects import Effects
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Operation
from contracts.participants import HUB
from storage.sqlite import Database
from tests.broker.ops import REGION_A, commits

pytestmark = pytest.mark.broker

GAP_S = 0.5
"""Between the two bursts: far longer than a slice, far shorter than the fixed linger."""


class Silent:
    """Takes every operation and answers nothing."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
        return Effects()

    def tick(self, now_ms: int) -> Effects:
        return Effects()


class BatchRecordingShell(ServiceShell):
    """Records the transfer ids of each batch it steps."""

    batches: list[list[str]]
    all_in: asyncio.Event
    expected: int

    async def _step(self, batch: list[Delivery], tick: bool) -> None:
        if batch:
            self.batches.append(
                [op.transfer_id for d in batch for op in d.envelope.operations]  # type: ignore[attr-defined]
            )
            if sum(len(b) for b in self.batches) >= self.expected:
                self.all_in.set()
        await super()._step(batch, tick)


async def _batches(
    connection: AbstractRobustConnection, amqp_url: str, tuning: ShellTuning
) -> list[list[str]]:
    """The batches a shell with ``tuning`` makes of a burst, a pause, then another burst."""
    topology = TrackedTopology(namespace=unique_namespace("test-linger"))
    credentials = await asyncio.to_thread(provision, amqp_url, topology.namespace, [HUB])
    shell = BatchRecordingShell(
        service="test-linger",
        address=REGION_A,
        core=Silent(),
        db=Database(":memory:"),
        connection=connection,
        topology=topology,
        tuning=tuning,
    )
    shell.batches, shell.all_in, shell.expected = [], asyncio.Event(), 10
    # The shell of a region waits for the clearinghouse's queue before it consumes.
    clearinghouse = await Inbox.open(connection, topology, CLEARINGHOUSE)
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))
    hub = await connect(credentials.url(HUB), name="test-linger-hub")
    try:
        await asyncio.wait_for(shell.ready.wait(), 10)
        publisher = await Publisher.open(hub, topology, "test-sender")
        for burst in ("a", "b"):
            # One envelope each, published together: they arrive close to one another.
            await asyncio.gather(*(publisher.publish({REGION_A: [op]}) for op in commits(5, burst)))
            await asyncio.sleep(GAP_S)
        await asyncio.wait_for(shell.all_in.wait(), 15)
        await publisher.close()
        return shell.batches
    finally:
        stop.set()
        try:
            await asyncio.wait_for(running, 15)
        finally:
            await hub.close()
            await clearinghouse.close()
            await cleanup_namespace(amqp_url, topology)
            await asyncio.to_thread(delete_users, credentials.passwords())


def _bursts_per_batch(batches: list[list[str]]) -> list[set[str]]:
    return [{tid[0] for tid in batch} for batch in batches]


@pytest.mark.timeout(60)
async def test_a_fixed_linger_waits_its_length_and_takes_the_second_burst_too(
    connection: AbstractRobustConnection, amqp_url: str
) -> None:
    tuning = ShellTuning(linger_ms=3_000)
    batches = await _batches(connection, amqp_url, tuning)
    assert {"a", "b"} in _bursts_per_batch(batches)


@pytest.mark.timeout(60)
async def test_an_adaptive_linger_stops_once_a_slice_brings_nothing(
    connection: AbstractRobustConnection, amqp_url: str
) -> None:
    tuning = ShellTuning(linger_ms=3_000, linger_slice_ms=50)
    batches = await _batches(connection, amqp_url, tuning)
    assert sorted(tid for batch in batches for tid in batch) == [
        *(f"a{i}" for i in range(5)),
        *(f"b{i}" for i in range(5)),
    ]
    assert {"a", "b"} not in _bursts_per_batch(batches)
