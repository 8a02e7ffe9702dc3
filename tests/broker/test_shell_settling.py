"""The shell settles its pipelined batches in delivery order, so one batch's single
multiple-ack never settles an earlier batch whose answers could not be published."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker import Inbox, Publisher
from broker.connection import connect
from broker.publisher import PublishError
from broker.shell import ServiceShell, ShellTuning
from broker.testing import (
    TrackedTopology,
    cleanup_namespace,
    collect,
    dead_letter_messages,
    queue_depth,
    unique_namespace,
)
from broker.users import delete_users, provision
from contracts.codec import decode
from contracts.effects import Effects, Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Commit, Operation
from contracts.participants import HUB
from storage.sqlite import Database
from tests.broker.ops import REGION_A, commits

pytestmark = pytest.mark.broker

NOWHERE = "region.999999"  # no queue is bound for it


class AnswerCore:
    """Answers each Commit to the clearinghouse, except ``lost*`` ones: to nowhere."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def handle(self, op: Operation, now_ms: int) -> Effects:
        assert isinstance(op, Commit)
        self.handled.append(op.transfer_id)
        to = NOWHERE if op.transfer_id.startswith("lost") else CLEARINGHOUSE
        return Effects([Outgoing(to, op)])

    def tick(self, now_ms: int) -> Effects:
        return Effects()


class SlowToFailShell(ServiceShell):
    """Publishing to nowhere fails only after later batches' answers are confirmed, as
    when the broker is slow to refuse: the order in which batches settle is then tested,
    not left to a race."""

    async def _publish(
        self, sends: dict[str, list[Operation]], routes: dict[str, list[str]]
    ) -> None:
        if NOWHERE in sends:
            await asyncio.sleep(0.3)
            raise PublishError(f"no queue is bound for {NOWHERE}")
        await super()._publish(sends, routes)


@pytest.mark.timeout(60)
async def test_a_batch_whose_answers_fail_is_redelivered_though_later_batches_are_acked(
    connection: AbstractRobustConnection, amqp_url: str
) -> None:
    topology = TrackedTopology(namespace=unique_namespace("test-settle"), delivery_limit=2)
    credentials = await asyncio.to_thread(provision, amqp_url, topology.namespace, [HUB])
    core = AnswerCore()
    shell = SlowToFailShell(
        service="test-settle",
        address=REGION_A,
        core=core,
        db=Database(":memory:"),
        connection=connection,
        topology=topology,
        # One delivery per batch, several batches awaiting confirms at once.
        tuning=ShellTuning(max_batch_messages=1, pipeline_depth=4, linger_ms=0),
    )
    stop = asyncio.Event()
    answers = await Inbox.open(connection, topology, CLEARINGHOUSE)
    running = asyncio.create_task(shell.run(stop))
    try:
        await asyncio.wait_for(shell.ready.wait(), 10)
        # The shell takes a Commit only from the clearinghouse's own broker user.
        hub = await connect(credentials.url(HUB), name="test-settle-hub")
        publisher = await Publisher.open(hub, topology, "test-sender")
        lost = [Commit("lost-1")]
        for op in [*commits(3, "a"), *lost, *commits(3, "b")]:
            await publisher.publish({REGION_A: [op]})

        answered = await collect(answers, 6)
        await answers.ack_through(answered)
        ids = sorted(
            op.transfer_id
            for d in answered
            for op in d.envelope.operations
            if isinstance(op, Commit)
        )
        assert ids == ["a0", "a1", "a2", "b0", "b1", "b2"]

        # Tried once and again at each redelivery up to the limit, then dead-lettered.
        [dead] = await dead_letter_messages(connection, topology, expect=1, timeout=15)
        assert decode(dead).operations == lost
        assert core.handled.count("lost-1") == topology.delivery_limit + 1
        assert await queue_depth(connection, topology.queue_for(REGION_A)) == 0
        await publisher.close()
        await hub.close()
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
        await answers.close()
        await cleanup_namespace(amqp_url, topology)
        await asyncio.to_thread(delete_users, credentials.passwords())
