"""Issue 3's rules over the real RabbitMQ, through the real services.

Regions: Wuhan (2024 scope, own account first), Chengdu (2021 scope, co-payer first),
Shanghai (no wallet), Beijing (not enabled). Secrets are ``pw-<psn>``.
"""

from __future__ import annotations

import pytest

from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    BillOutcome,
    EnrollPerson,
    Relationship,
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    RevokeBinding,
    SetRegionEnabled,
    SubmitBill,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Insurance
from gongji.audit import audit_books
from tests.family.conftest import BEIJING, CHENGDU, REGIONS, SHANGHAI, WUHAN, Family

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


async def bill(f: Family, region: str, tid: str, psn: str, amount: int) -> BillOutcome:
    return await f.client.submit(region, SubmitBill(tid, psn, amount, f.client.address), 30)


async def bind(
    f: Family,
    rid: str,
    copayer: str,
    beneficiary: str,
    region: str,
    relationship: Relationship = Relationship.PARENT,
    secret: str | None = None,
) -> str:
    op = RequestBinding(
        rid, copayer, secret or f"pw-{copayer}", beneficiary, region, relationship, f.client.address
    )
    return (await f.client.bind(WUHAN, op, 30)).outcome


def assert_books(f: Family) -> None:
    audit = audit_books(f.cluster.region_books(REGIONS))
    assert audit.books_balanced and audit.conserved, audit.problems


async def test_binding_flow_and_refusals(family: Family) -> None:
    f = family
    assert await bind(f, "r-bad", "A1", "B1", CHENGDU, secret="wrong") == "IDENTITY_CHECK_FAILED"
    assert await bind(f, "r-res", "A2", "B1", CHENGDU) == "NO_PERSONAL_ACCOUNT"
    assert await bind(f, "r-none", "A1", "N1", CHENGDU) == "BENEFICIARY_NOT_INSURED"
    assert await bind(f, "r-off", "A1", "J1", BEIJING) == "REGION_NOT_ENABLED"
    assert await bind(f, "r-sib", "A1", "B1", CHENGDU, Relationship.SIBLING) == (
        "POLICY_DISAGREEMENT"
    )
    assert (await bill(f, CHENGDU, "t0", "B1", 1_000)).reason is ReasonCode.NO_BINDING
    assert await bind(f, "r-ok", "A1", "B1", CHENGDU) == COMMITTED
    assert (await bill(f, CHENGDU, "t1", "B1", 1_000)).outcome == COMMITTED
    revoke = RevokeBinding("r-rev", "A1", "pw-A1", "r-ok", f.client.address)
    assert (await f.client.bind(WUHAN, revoke, 30)).outcome == COMMITTED
    assert (await bill(f, CHENGDU, "t2", "B1", 1_000)).reason is ReasonCode.NO_BINDING
    assert_books(f)


async def test_binding_ends_when_insurance_stops(family: Family) -> None:
    f = family
    assert await bind(f, "r1", "A1", "B1", CHENGDU) == COMMITTED
    await f.client.send(f"region.{CHENGDU}", EnrollPerson("B1", Insurance.NONE))
    await f.client.send(f"region.{CHENGDU}", EnrollPerson("B1", Insurance.RESIDENT))
    assert (await bill(f, CHENGDU, "t1", "B1", 1_000)).reason is ReasonCode.NO_BINDING


async def test_payment_order_of_the_beneficiarys_region_governs(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B2", CHENGDU)  # Chengdu: co-payer first
    await f.seed_binding("b2", "S1", SHANGHAI, "W2", WUHAN)  # Wuhan: own account first
    chengdu = await bill(f, CHENGDU, "t1", "B2", 10_000)
    assert (chengdu.paid_fen, chengdu.own_paid_fen) == (10_000, 0)
    wuhan = await bill(f, WUHAN, "t2", "W2", 10_000)
    assert (wuhan.own_paid_fen, wuhan.paid_fen, wuhan.remaining_fen) == (3_000, 7_000, 0)
    assert_books(f)


async def wallet(f: Family, tid: str, amount: int, to: str = "B1", region: str = CHENGDU) -> str:
    op = RequestWalletTransfer(tid, "A1", "pw-A1", to, region, amount, f.client.address)
    return (await f.client.request(WUHAN, op, tid, 30)).outcome


async def test_wallet_transfers_and_limits(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await f.client.send(f"region.{SHANGHAI}", EnrollPerson("S2", Insurance.RESIDENT))
    await f.seed_binding("b2", "A1", WUHAN, "S2", SHANGHAI)
    assert await wallet(f, "w-big", 200_001) == "LIMIT_EXCEEDED"
    assert await wallet(f, "w-sh", 1_000, "S2", SHANGHAI) == "WALLET_NOT_ENABLED"
    assert [await wallet(f, f"w{i}", 10_000) for i in range(3)] == [COMMITTED] * 3
    assert await wallet(f, "w4", 1_000) == "LIMIT_EXCEEDED"
    paid = await bill(f, CHENGDU, "t1", "B1", 5_000)  # the wallet pays the bill
    assert (paid.wallet_paid_fen, paid.paid_fen) == (5_000, 0)
    assert_books(f)


async def premium(f: Family, tid: str, beneficiary: str = "B1", year: int = 2026) -> str:
    op = RequestPremiumPayment(tid, "A1", "pw-A1", beneficiary, CHENGDU, year, f.client.address)
    return (await f.client.request(WUHAN, op, tid, 30)).outcome


async def test_premium_payments(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await f.seed_binding("b2", "A1", WUHAN, "B2", CHENGDU)
    assert await premium(f, "p1") == COMMITTED
    assert await premium(f, "p2") == "PREMIUM_ALREADY_PAID"
    assert await premium(f, "p3", "B2") == "NOT_RESIDENT_INSURED"
    store = f.cluster.region_store(WUHAN)
    try:
        assert store.books.available("psn:A1") == 100_000 - 40_000
    finally:
        store.close()
    assert_books(f)


async def test_live_enable_and_disable(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "J2", BEIJING, "B1", CHENGDU)
    assert (await bill(f, CHENGDU, "t1", "B1", 1_000)).reason is ReasonCode.REGION_NOT_ENABLED
    await f.client.send(CLEARINGHOUSE, SetRegionEnabled(BEIJING, True))
    assert (await bill(f, CHENGDU, "t2", "B1", 1_000)).outcome == COMMITTED
    await f.client.send(CLEARINGHOUSE, SetRegionEnabled(BEIJING, False))
    assert (await bill(f, CHENGDU, "t3", "B1", 1_000)).reason is ReasonCode.REGION_NOT_ENABLED
    store = f.cluster.region_store(BEIJING)
    try:
        assert store.holds_by_state() == {"posted": 1}  # nothing held for the refused one
    finally:
        store.close()
