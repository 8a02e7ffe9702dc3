"""Duplicates and redeliveries: the same transfer id never moves money twice.

Redeliveries are made as RabbitMQ makes them after a crash before the ack: the same
operations published again, straight to the service's queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from broker.inbox import Inbox
from broker.publisher import Publisher
from broker.testing import TrackedTopology, queue_depth
from clearinghouse.store import TransferState
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    Commit,
    CommitResult,
    Credit,
    Credited,
    Operation,
    Refuse,
    RequestAid,
    Reserve,
    ReserveResult,
    SubmitBill,
)
from contracts.participants import HUB, region
from contracts.reasons import COMMITTED, ReasonCode
from tests.integration.conftest import (
    CHENGDU,
    SHANGHAI,
    TEST_SETTINGS,
    WUHAN,
    World,
    all_totals,
    available,
    bill_record,
    eventually,
    quiesce,
    transfer_record,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


async def read_ops(
    inbox: Inbox,
    until: Callable[[Operation], bool],
    what: str,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a bound; fails naming what never came
) -> list[Operation]:
    """Every operation arriving at ``inbox`` up to the first that ``until`` accepts (acked)."""
    seen: list[Operation] = []
    deadline = time.monotonic() + timeout
    while not any(map(until, seen)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{what} never arrived; got {seen}")
        batch = await inbox.next_batch(64, timeout=remaining)
        seen += [op for delivery in batch for op in delivery.envelope.operations]
        await inbox.ack(batch)
    return seen


async def test_duplicate_request_returns_the_first_outcome_and_moves_nothing_twice(
    world: World,
) -> None:
    first = await world.pay(CHENGDU, "B1", 7_000, "dup")
    assert (first.outcome, first.paid_fen) == (COMMITTED, 7_000)
    await quiesce(world.cluster, world.codes)
    before = all_totals(world.cluster, world.codes)

    again = await world.pay(CHENGDU, "B1", 7_000, "dup")

    assert again == first
    ledger = await world.settle_and_check()
    assert all_totals(world.cluster, world.codes) == before
    assert (ledger.committed, ledger.moved_fen) == (1, 7_000)
    assert available(world.cluster, WUHAN, "A1") == 43_000


async def test_same_id_with_other_content_is_duplicate_mismatch(world: World) -> None:
    first = await world.pay(CHENGDU, "B1", 7_000, "dup")
    assert first.outcome == COMMITTED
    await quiesce(world.cluster, world.codes)
    before = all_totals(world.cluster, world.codes)

    other_amount = await world.pay(CHENGDU, "B1", 9_000, "dup")
    other_person = await world.pay(CHENGDU, "B2", 7_000, "dup")

    assert (other_amount.reason, other_amount.paid_fen) == (ReasonCode.DUPLICATE_MISMATCH, 0)
    assert (other_person.reason, other_person.paid_fen) == (ReasonCode.DUPLICATE_MISMATCH, 0)
    await world.settle_and_check()
    assert all_totals(world.cluster, world.codes) == before
    # The first bill keeps its outcome.
    bill = bill_record(world.cluster, CHENGDU, "dup")
    assert bill is not None and (bill.reason, bill.paid_fen, bill.amount_fen) == (
        None,
        7_000,
        7_000,
    )


async def test_same_id_at_another_payee_region_is_duplicate_mismatch(world: World) -> None:
    await world.pay(CHENGDU, "B1", 7_000, "dup")
    await quiesce(world.cluster, world.codes)
    before = all_totals(world.cluster, world.codes)

    # Shanghai has never seen "dup"; the clearinghouse has, for another bill.
    elsewhere = await world.pay(SHANGHAI, "S1", 7_000, "dup")

    assert (elsewhere.reason, elsewhere.paid_fen) == (ReasonCode.DUPLICATE_MISMATCH, 0)
    await world.settle_and_check()
    assert all_totals(world.cluster, world.codes) == before
    t = transfer_record(world.cluster, "dup")
    assert t is not None and (t.state, t.payee_region) == (TransferState.COMMITTED, CHENGDU)


@pytest.mark.coordinator(reserve_timeout_ms=20_000)
async def test_duplicate_while_the_first_is_in_flight_gets_the_outcome_too(
    world: World, topology: TrackedTopology
) -> None:
    """A submitter that repeats a bill before its outcome came must hear the outcome too."""
    assert world.cluster.connection is not None
    wuhan_queue = topology.queue_for(region_address(WUHAN))
    await world.cluster.stop(region_address(WUHAN))

    first = asyncio.create_task(world.pay(CHENGDU, "B1", 5_000, "twice"))

    def reserving() -> bool:
        t = transfer_record(world.cluster, "twice")
        return t is not None and t.state is TransferState.RESERVING

    await eventually(reserving, "the clearinghouse reserving at the stopped Wuhan")
    await eventually_depth(world, wuhan_queue, 1)
    second = asyncio.create_task(world.pay(CHENGDU, "B1", 5_000, "twice"))
    # Chengdu asked again and the clearinghouse re-sent its Reserve to Wuhan.
    await eventually_depth(world, wuhan_queue, 2)
    await world.cluster.start_region(WUHAN)

    one = await first
    assert (one.outcome, one.paid_fen) == (COMMITTED, 5_000)
    await world.settle_and_check()
    assert available(world.cluster, WUHAN, "A1") == 45_000
    # Everything that could answer the second submission has happened by now.
    two = await asyncio.wait_for(second, timeout=3)
    assert two == one


async def eventually_depth(world: World, queue_name: str, depth: int) -> None:
    connection = world.cluster.connection
    assert connection is not None
    deadline = time.monotonic() + 10
    while await queue_depth(connection, queue_name) < depth:
        if time.monotonic() >= deadline:
            pytest.fail(f"{queue_name} never reached {depth} messages")
        await asyncio.sleep(0.02)


async def test_redelivered_reserve_commit_and_credit_change_nothing_and_answer_again(
    world: World, topology: TrackedTopology
) -> None:
    outcome = await world.pay(CHENGDU, "B1", 3_000, "redo")
    assert (outcome.outcome, outcome.paid_fen) == (COMMITTED, 3_000)
    await quiesce(world.cluster, world.codes)
    # The clearinghouse stops, so the regions' answers wait in its queue for us to read.
    await world.cluster.stop(CLEARINGHOUSE)
    before = all_totals(world.cluster, world.codes)
    # The clearinghouse's own broker user, as a redelivery of its messages would be.
    connection = await world.cluster.connection_of(HUB)
    answers = await Inbox.open(connection, topology, CLEARINGHOUSE)
    publisher = await Publisher.open(connection, topology, CLEARINGHOUSE)
    try:
        # Exactly what the clearinghouse sent the first time, each in a message of its own.
        reserve = Reserve("redo", "A1", 3_000, CHENGDU, TEST_SETTINGS.hold_timeout_ms)
        await publisher.publish({region_address(WUHAN): [reserve]})
        await publisher.publish({region_address(WUHAN): [Commit("redo")]})
        credit = Credit("redo", 3_000, WUHAN, beneficiary="B1")
        await publisher.publish({region_address(CHENGDU): [credit]})

        expected = [
            ReserveResult("redo", WUHAN, 3_000),
            CommitResult("redo", WUHAN, 3_000),
            Credited("redo", CHENGDU),
        ]
        seen: list[Operation] = []
        for op in expected:
            if op not in seen:
                seen += await read_ops(answers, op.__eq__, repr(op))
    finally:
        await answers.close()
        await publisher.close()

    assert sorted(map(repr, seen)) == sorted(map(repr, expected))
    assert all_totals(world.cluster, world.codes) == before
    # Chengdu re-sent the bill's one outcome; the client counts it as a surplus copy.
    await eventually(lambda: world.client.surplus_outcomes == 1, "the re-sent outcome")
    ledger = await world.settle_and_check()
    assert (ledger.committed, ledger.moved_fen) == (1, 3_000)


async def test_redelivered_reserve_result_resends_the_refusal(
    world: World, topology: TrackedTopology
) -> None:
    """The clearinghouse answers a redelivered region answer again, refusals included.

    Were it not so, a crash between committing the refusal and publishing it (or a failed
    publish, which requeues the delivery) would leave the payee's bill without an outcome.
    """
    zero = await world.pay(CHENGDU, "B3", 4_000, "zero")
    marker = await world.pay(CHENGDU, "B1", 1_000, "marker")
    assert (zero.reason, marker.outcome) == (ReasonCode.ZERO_BALANCE, COMMITTED)
    await quiesce(world.cluster, world.codes)
    # Chengdu stops, so what the clearinghouse sends it waits in its queue for us to read.
    await world.cluster.stop(region_address(CHENGDU))
    chengdu = await world.cluster.connection_of(region(CHENGDU))
    to_chengdu = await Inbox.open(chengdu, topology, region_address(CHENGDU))
    wuhan_connection = await world.cluster.connection_of(region(WUHAN))
    wuhan = await Publisher.open(wuhan_connection, topology, region_address(WUHAN))
    publisher = await Publisher.open(chengdu, topology, region_address(CHENGDU))
    try:
        # Wuhan's refusal again (from Wuhan's user), then Chengdu's repeated request
        # whose answer (a Credit) marks the point by which the refusal must have been
        # re-sent (same queue, in order: the first is confirmed before the second).
        await wuhan.publish(
            {CLEARINGHOUSE: [ReserveResult("zero", WUHAN, 0, ReasonCode.ZERO_BALANCE)]}
        )
        await publisher.publish({CLEARINGHOUSE: [RequestAid("marker", "B1", CHENGDU, 1_000)]})
        seen = await read_ops(
            to_chengdu,
            lambda op: isinstance(op, Credit) and op.transfer_id == "marker",
            "the Credit re-sent for the repeated request",
        )
    finally:
        await to_chengdu.close()
        await publisher.close()
        await wuhan.close()

    refusals = [op for op in seen if isinstance(op, Refuse) and op.transfer_id == "zero"]
    assert [r.reason for r in refusals] == [ReasonCode.ZERO_BALANCE]


async def test_redelivered_submit_of_a_settled_bill_resends_its_outcome(
    world: World, topology: TrackedTopology
) -> None:
    outcome = await world.pay(CHENGDU, "B5", 2_000, "again")
    assert outcome.reason is ReasonCode.NO_BINDING
    await quiesce(world.cluster, world.codes)
    before = all_totals(world.cluster, world.codes)
    publisher = await Publisher.open(world.client.connection, topology, world.client.address)
    try:
        bill = SubmitBill("again", "B5", 2_000, world.client.address)
        await publisher.publish({region_address(CHENGDU): [bill]})
    finally:
        await publisher.close()

    await eventually(lambda: world.client.surplus_outcomes == 1, "the re-sent outcome")
    await world.settle_and_check()
    assert all_totals(world.cluster, world.codes) == before
