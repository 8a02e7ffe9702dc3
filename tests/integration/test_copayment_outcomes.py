"""Every outcome of a cross-province co-payment, end to end on the real broker."""

from __future__ import annotations

import pytest

from clearinghouse.store import TransferState
from contracts.reasons import COMMITTED, ReasonCode
from regions.store import BILLS_PAID, HoldState, interregion_account
from tests.integration.conftest import (
    CHENGDU,
    GUANGZHOU,
    HAIKOU,
    KUNMING,
    SHANGHAI,
    WUHAN,
    World,
    account_totals,
    available,
    bill_record,
    holds,
    journal_phases,
    pending_debits,
    region_store,
    transfer_record,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


async def test_committed_in_full_moves_money_in_both_regions(world: World) -> None:
    outcome = await world.pay(CHENGDU, "B1", 12_000, "full")

    assert (outcome.outcome, outcome.paid_fen, outcome.remaining_fen, outcome.payer_region) == (
        COMMITTED,
        12_000,
        0,
        WUHAN,
    )
    ledger = await world.settle_and_check()
    assert (ledger.committed, ledger.moved_fen) == (1, 12_000)
    assert available(world.cluster, WUHAN, "A1") == 38_000
    a1 = account_totals(world.cluster, WUHAN, "A1")
    assert (a1.debits_posted, a1.debits_pending) == (12_000, 0)
    with region_store(world.cluster, WUHAN) as wuhan:
        # Wuhan now owes Chengdu what it paid out of A1's account.
        assert wuhan.books.sum_posted_balance(interregion_account(CHENGDU)) == 12_000
        assert wuhan.books.check() == []
    with region_store(world.cluster, CHENGDU) as chengdu:
        assert chengdu.books.sum_posted_balance(BILLS_PAID) == 12_000
        assert chengdu.books.sum_posted_balance(interregion_account(WUHAN)) == -12_000
        assert chengdu.credit_amount("full") == 12_000
        assert chengdu.books.check() == []
    assert journal_phases(world.cluster, WUHAN, "full") == ["pending", "post"]
    t = transfer_record(world.cluster, "full")
    assert t is not None and (t.state, t.posted_fen) == (TransferState.COMMITTED, 12_000)
    assert ledger.audit.conserved and ledger.audit.books_balanced


async def test_committed_in_part_when_the_balance_is_below_the_bill(world: World) -> None:
    outcome = await world.pay(CHENGDU, "B1", 70_000, "part")

    assert (outcome.outcome, outcome.paid_fen, outcome.remaining_fen) == (COMMITTED, 50_000, 20_000)
    ledger = await world.settle_and_check()
    assert ledger.moved_fen == 50_000
    assert available(world.cluster, WUHAN, "A1") == 0
    a1 = account_totals(world.cluster, WUHAN, "A1")
    assert (a1.credits_posted, a1.debits_posted, a1.debits_pending) == (50_000, 50_000, 0)
    with region_store(world.cluster, CHENGDU) as chengdu:
        assert chengdu.books.sum_posted_balance(BILLS_PAID) == 50_000
        bill = chengdu.bill("part")
        assert bill is not None and (bill.amount_fen, bill.paid_fen) == (70_000, 50_000)
    with region_store(world.cluster, WUHAN) as wuhan:
        assert wuhan.books.check() == []
    assert ledger.audit.conserved


def assert_nothing_held_anywhere(world: World) -> None:
    """No region holds, posts or credits anything: hold tables empty, no pending debits."""
    for code in world.codes:
        assert holds(world.cluster, code) == {}, f"region {code} has hold records"
    assert pending_debits(world.cluster, world.codes) == 0


async def test_region_not_enabled_on_the_payee_side_holds_nothing(world: World) -> None:
    outcome = await world.pay(GUANGZHOU, "GB", 10_000, "off-payee")

    assert (outcome.reason, outcome.paid_fen, outcome.remaining_fen) == (
        ReasonCode.REGION_NOT_ENABLED,
        0,
        10_000,
    )
    assert GUANGZHOU in outcome.detail
    await world.settle_and_check()
    assert_nothing_held_anywhere(world)
    assert available(world.cluster, WUHAN, "A1") == 50_000
    t = transfer_record(world.cluster, "off-payee")
    assert t is not None and (t.state, t.reason, t.payer) == (
        TransferState.ABORTED,
        ReasonCode.REGION_NOT_ENABLED,
        "",
    )


async def test_region_not_enabled_on_the_payer_side_holds_nothing(world: World) -> None:
    outcome = await world.pay(CHENGDU, "B4", 10_000, "off-payer")

    assert (outcome.reason, outcome.paid_fen) == (ReasonCode.REGION_NOT_ENABLED, 0)
    assert GUANGZHOU in outcome.detail
    await world.settle_and_check()
    assert_nothing_held_anywhere(world)
    assert available(world.cluster, GUANGZHOU, "G1") == 90_000


@pytest.mark.parametrize(
    ("region", "beneficiary", "reason"),
    [
        pytest.param(CHENGDU, "B6", ReasonCode.UNKNOWN_REGION, id="payer-region-not-registered"),
        pytest.param(KUNMING, "K1", ReasonCode.UNKNOWN_REGION, id="payee-region-not-registered"),
        pytest.param(CHENGDU, "B5", ReasonCode.NO_BINDING, id="no-binding"),
        pytest.param(CHENGDU, "N1", ReasonCode.BENEFICIARY_NOT_INSURED, id="not-insured"),
    ],
)
async def test_refused_before_anything_is_held(
    world: World, region: str, beneficiary: str, reason: ReasonCode
) -> None:
    outcome = await world.pay(region, beneficiary, 8_000, "refused")

    assert (outcome.reason, outcome.paid_fen, outcome.remaining_fen) == (reason, 0, 8_000)
    bill = bill_record(world.cluster, region, "refused")
    assert bill is not None and bill.reason is reason
    await world.settle_and_check()
    assert_nothing_held_anywhere(world)


async def test_not_insured_is_refused_by_the_payee_region_alone(world: World) -> None:
    outcome = await world.pay(CHENGDU, "N1", 8_000, "uninsured")

    assert outcome.reason is ReasonCode.BENEFICIARY_NOT_INSURED
    await world.settle_and_check()
    # The clearinghouse never heard of it: the payee region refused on its own records.
    assert transfer_record(world.cluster, "uninsured") is None


async def test_bill_to_a_region_without_a_service_is_unknown_region(world: World) -> None:
    outcome = await world.pay(HAIKOU, "H1", 8_000, "nowhere")

    assert (outcome.reason, outcome.paid_fen, outcome.remaining_fen) == (
        ReasonCode.UNKNOWN_REGION,
        0,
        8_000,
    )
    assert HAIKOU in outcome.detail
    assert transfer_record(world.cluster, "nowhere") is None
    await world.settle_and_check()
    assert_nothing_held_anywhere(world)


async def test_zero_balance_holds_nothing(world: World) -> None:
    outcome = await world.pay(CHENGDU, "B3", 8_000, "zero")

    assert (outcome.reason, outcome.paid_fen, outcome.payer_region) == (
        ReasonCode.ZERO_BALANCE,
        0,
        "",
    )
    await world.settle_and_check()
    # Wuhan refused the reserve: a record of the refusal, nothing in the books.
    assert holds(world.cluster, WUHAN) == {"zero": (HoldState.REFUSED, 0)}
    assert journal_phases(world.cluster, WUHAN, "zero") == []
    assert pending_debits(world.cluster, world.codes) == 0


async def test_several_copayers_largest_balance_pays_alone(world: World) -> None:
    # B2 is bound to A1 (Wuhan, 50,000) and A2 (Shanghai, 80,000).
    first = await world.pay(CHENGDU, "B2", 100_000, "many-1")

    assert (first.outcome, first.payer_region, first.paid_fen, first.remaining_fen) == (
        COMMITTED,
        SHANGHAI,
        80_000,
        20_000,
    )
    # Never combined: A1 was asked for a quote only, nothing held or posted there.
    assert available(world.cluster, WUHAN, "A1") == 50_000
    assert journal_phases(world.cluster, WUHAN, "many-1") == []
    assert "many-1" not in holds(world.cluster, WUHAN)

    # Now A2 has nothing left; the largest balance is A1's.
    second = await world.pay(CHENGDU, "B2", 30_000, "many-2")

    assert (second.outcome, second.payer_region, second.paid_fen, second.remaining_fen) == (
        COMMITTED,
        WUHAN,
        30_000,
        0,
    )
    ledger = await world.settle_and_check()
    assert ledger.moved_fen == 110_000
    assert available(world.cluster, SHANGHAI, "A2") == 0
    assert available(world.cluster, WUHAN, "A1") == 20_000
