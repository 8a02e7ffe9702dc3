"""A payer region that does not answer: TIMEOUT, then its late hold is released."""

from __future__ import annotations

import pytest

from clearinghouse.store import TransferState
from contracts.identifiers import region_address
from contracts.reasons import ReasonCode
from regions.store import HoldState
from tests.integration.conftest import (
    CHENGDU,
    WUHAN,
    World,
    account_totals,
    available,
    bill_record,
    eventually,
    holds,
    journal_phases,
    region_store,
    transfer_record,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


async def test_silent_payer_times_out_and_its_late_hold_is_voided(world: World) -> None:
    # Wuhan (A1's region) stops; its queue stays and collects what is sent to it.
    await world.cluster.stop(region_address(WUHAN))

    outcome = await world.pay(CHENGDU, "B1", 5_000, "silent")

    assert (outcome.reason, outcome.paid_fen, outcome.remaining_fen) == (
        ReasonCode.TIMEOUT,
        0,
        5_000,
    )
    bill = bill_record(world.cluster, CHENGDU, "silent")
    assert bill is not None and (bill.reason, bill.paid_fen) == (ReasonCode.TIMEOUT, 0)
    t = transfer_record(world.cluster, "silent")
    # Decided (the requester knows), and still asking Wuhan to release what it may hold.
    assert t is not None and (t.state, t.reason) == (TransferState.ABORTING, ReasonCode.TIMEOUT)
    assert holds(world.cluster, WUHAN) == {}

    # Wuhan comes back: the Reserve waiting in its queue holds, the Abort behind it voids.
    await world.cluster.start_region(WUHAN)

    def released() -> bool:
        record = transfer_record(world.cluster, "silent")
        return record is not None and record.state is TransferState.ABORTED

    await eventually(released, "the clearinghouse heard Wuhan's Aborted")
    assert holds(world.cluster, WUHAN) == {"silent": (HoldState.RELEASED_BY_ABORT, 5_000)}
    assert journal_phases(world.cluster, WUHAN, "silent") == ["pending", "void"]
    assert available(world.cluster, WUHAN, "A1") == 50_000
    a1 = account_totals(world.cluster, WUHAN, "A1")
    assert (a1.debits_posted, a1.debits_pending) == (0, 0)
    with region_store(world.cluster, CHENGDU) as chengdu:
        assert chengdu.credit_amount("silent") is None
    ledger = await world.settle_and_check()
    assert (ledger.committed, ledger.moved_fen) == (0, 0)
    # The bill keeps its one outcome, TIMEOUT, and stays unpaid. The clearinghouse's
    # retries of the abort (while Wuhan was down) may repeat that outcome to the client,
    # never change it.
    bill = bill_record(world.cluster, CHENGDU, "silent")
    assert bill is not None and (bill.reason, bill.paid_fen) == (ReasonCode.TIMEOUT, 0)
    assert all(repeat == outcome for repeat in world.client.surplus), world.client.surplus
