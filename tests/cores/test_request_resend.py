"""A request a region forwarded and lost on the way is sent again, until its outcome comes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from contracts.effects import Retried
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    BindingOutcome,
    Operation,
    ProposeBinding,
    Relationship,
    RequestAid,
    RequestBinding,
    RequestPremiumPayment,
    RequestTransfer,
    RequestWalletTransfer,
    RevokeBinding,
    SubmitBill,
    WithdrawBinding,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Insurance
from regions.context import RESEND_FIRST_MS, RESEND_MAX_MS
from regions.hold_states import HoldState
from regions.store import RegionStore, person_account, wallet_account
from tests.cores.world import CHENGDU, CLIENT, WUHAN, World, region


def family() -> World:
    w = World(region(WUHAN), region(CHENGDU))
    w.enroll(WUHAN, "A1", Insurance.EMPLOYEE, 100_000)
    w.enroll(CHENGDU, "B1", Insurance.RESIDENT)
    w.enroll(CHENGDU, "B2", Insurance.RESIDENT)  # bound to nobody
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    return w


def submit_losing_the_request(w: World, tid: str = "t1", amount: int = 12_000) -> None:
    w.net.send(region_address(CHENGDU), SubmitBill(tid, "B1", amount, CLIENT))
    assert w.deliver_losing(RequestAid) == [RequestAid(tid, "B1", CHENGDU, amount)]
    assert tid not in w.net.outcomes and w.net.clearinghouse.store.transfer(tid) is None


def in_flight(w: World) -> list[Operation]:
    return [item.op for item in w.net.queue]


def test_a_lost_request_for_aid_is_sent_again_after_the_deadline_and_the_bill_completes() -> None:
    w = family()
    submit_losing_the_request(w)
    w.net.advance(RESEND_FIRST_MS - 1)
    assert in_flight(w) == []
    w.net.advance(1)
    assert in_flight(w) == [RequestAid("t1", "B1", CHENGDU, 12_000)]
    retried = [e for e in w.net.events[region_address(CHENGDU)] if isinstance(e, Retried)]
    assert retried == [Retried("t1", "request_aid", CLEARINGHOUSE)]
    w.net.deliver_all()
    [outcome] = w.net.outcomes["t1"]
    assert (outcome.outcome, outcome.paid_fen, outcome.payer_region) == (COMMITTED, 12_000, WUHAN)
    assert w.net.regions[WUHAN].books.available(person_account("A1")) == 88_000
    hold = w.net.regions[WUHAN].store.hold("t1")
    assert hold is not None and hold.state is HoldState.POSTED


def resend_times(w: World, lost: type[Operation], until_ms: int) -> list[int]:
    """When the region sent ``lost`` again, losing it every time, second by second."""
    times = []
    while w.net.now_ms < until_ms:
        w.net.advance(1_000)
        if w.deliver_losing(lost):
            times.append(w.net.now_ms)
    return times


def test_re_sends_back_off_from_5_to_60_seconds_and_the_first_one_that_arrives_completes() -> None:
    w = family()
    submit_losing_the_request(w)
    assert resend_times(w, RequestAid, 200_000) == [5_000, 15_000, 35_000, 75_000, 135_000, 195_000]
    assert RESEND_MAX_MS == 195_000 - 135_000
    w.net.advance(RESEND_MAX_MS)
    w.net.deliver_all()
    assert [o.outcome for o in w.net.outcomes["t1"]] == [COMMITTED]


def test_nothing_is_sent_again_once_a_bill_is_final() -> None:
    w = family()
    w.bill(CHENGDU, "paid", "B1", 3_000)
    w.bill(CHENGDU, "refused", "B2", 3_000)  # no binding: refused by the clearinghouse
    w.bill(CHENGDU, "invalid", "B1", 0)  # refused here, never forwarded
    submit_losing_the_request(w, "late")
    w.net.advance(RESEND_FIRST_MS)
    w.net.deliver_all()  # the re-send arrives; the bill completes
    outcomes = {tid: w.net.outcomes[tid][-1].outcome for tid in ("paid", "refused", "late")}
    assert outcomes == {
        "paid": COMMITTED,
        "refused": ReasonCode.NO_BINDING,
        "late": COMMITTED,
    }
    w.net.events[region_address(CHENGDU)].clear()
    for _ in range(30):  # ten minutes, past every back-off step
        w.net.advance(20_000)
        assert in_flight(w) == []
    assert not any(isinstance(e, Retried) for e in w.net.events[region_address(CHENGDU)])


def test_the_re_send_timer_survives_a_restart_of_the_region(tmp_path: Path) -> None:
    w = family()
    submit_losing_the_request(w)
    w.net.advance(RESEND_FIRST_MS)
    assert w.deliver_losing(RequestAid)  # the first re-send is lost too; next: 10 s later
    w.net.advance(3_000)
    w.restart(CHENGDU, tmp_path / "chengdu.sqlite")
    w.net.advance(6_999)
    assert in_flight(w) == []  # the rebuilt core kept the backed-off time, not a fresh 5 s
    w.net.advance(1)
    assert in_flight(w) == [RequestAid("t1", "B1", CHENGDU, 12_000)]
    w.net.deliver_all()
    assert [o.outcome for o in w.net.outcomes["t1"]] == [COMMITTED]


@pytest.mark.parametrize("flow", ["wallet", "premium"])
def test_a_lost_wallet_or_premium_request_is_sent_again_and_completes(flow: str) -> None:
    w = family()
    request: Operation = (
        RequestWalletTransfer("x1", "A1", "pw-A1", "B1", CHENGDU, 50_000, CLIENT)
        if flow == "wallet"
        else RequestPremiumPayment("x1", "A1", "pw-A1", "B1", CHENGDU, 2026, CLIENT)
    )
    w.net.send(region_address(WUHAN), request)
    [lost] = w.deliver_losing(RequestTransfer)
    w.net.advance(RESEND_FIRST_MS)
    assert in_flight(w) == [lost]
    w.net.deliver_all()
    [outcome] = w.net.outcomes["x1"]
    assert (outcome.outcome, outcome.flow) == (COMMITTED, flow)
    chengdu = w.net.regions[CHENGDU]
    if flow == "wallet":
        assert chengdu.books.available(wallet_account("B1")) == 50_000
    else:
        premium = chengdu.store.premium("B1", 2026)
        assert premium is not None and premium.state == "paid"


def test_lost_binding_requests_are_sent_again_and_decided() -> None:
    w = family()
    w.net.send(
        region_address(WUHAN),
        RequestBinding("r1", "A1", "pw-A1", "B2", CHENGDU, Relationship.CHILD, CLIENT),
    )
    [proposal] = w.deliver_losing(ProposeBinding)
    w.net.advance(RESEND_FIRST_MS)
    assert in_flight(w) == [proposal]
    w.net.deliver_all()
    w.net.send(region_address(WUHAN), RevokeBinding("r2", "A1", "pw-A1", "r1", CLIENT))
    [withdrawal] = w.deliver_losing(WithdrawBinding)
    w.net.advance(RESEND_FIRST_MS)
    assert in_flight(w) == [withdrawal]
    w.net.deliver_all()
    answers = [
        (r.request_id, r.binding_id, r.reason)
        for r in w.net.replies
        if isinstance(r, BindingOutcome)
    ]
    assert answers == [("r1", "r1", None), ("r2", "r1", None)] and len(w.net.replies) == 2
    assert w.net.clearinghouse.store.active_bindings_of("B2", CHENGDU) == []
    w.net.advance(10 * RESEND_MAX_MS)
    assert in_flight(w) == []  # both decided: their timers stopped


def test_a_file_of_the_previous_layout_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    store = RegionStore.open(path)
    with store.db.transaction():
        store.add_person("A1", Insurance.EMPLOYEE, 0)
        for tid, payer, reason in (
            ("expired", "A1", ReasonCode.HOLD_EXPIRED),
            ("aborted", "A1", ReasonCode.TIMEOUT),
            ("tombstone", None, ReasonCode.TIMEOUT),
        ):
            store.add_hold(tid, payer, CHENGDU, 10, 10, HoldState.PENDING, reason, 0, 0)
        store.add_bill("asked", "B1", 10, CLIENT, 0, resend_at_ms=5_000)
        store.add_binding_request("revoking", "revoke", "A1", "b1", CLIENT, "f", resend_at_ms=1)
    store.close()
    # Rewrite it as the previous version left it: "voided" holds, no re-send columns.
    old = sqlite3.connect(path)
    old.executescript(
        "UPDATE holds SET state = 'voided';"
        "DROP INDEX bills_resend_due;"
        "ALTER TABLE bills DROP COLUMN resend_at_ms;"
        "ALTER TABLE bills DROP COLUMN resends;"
        "DROP INDEX binding_requests_resend_due;"
        "ALTER TABLE binding_requests DROP COLUMN beneficiary;"
        "ALTER TABLE binding_requests DROP COLUMN beneficiary_region;"
        "ALTER TABLE binding_requests DROP COLUMN relationship;"
        "ALTER TABLE binding_requests DROP COLUMN resend_at_ms;"
        "ALTER TABLE binding_requests DROP COLUMN resends;"
        "PRAGMA user_version = 0;"
    )
    old.close()

    store = RegionStore.open(path)
    states = {tid: h.state for tid in ("expired", "aborted", "tombstone") if (h := store.hold(tid))}
    assert states == {
        "expired": HoldState.EXPIRED,
        "aborted": HoldState.RELEASED_BY_ABORT,
        "tombstone": HoldState.ABORTED_BEFORE_RESERVE,
    }
    # A request under way when the old version stopped is asked for again at once.
    assert [(bill.transfer_id, resends) for bill, resends in store.requests_due(0)] == [
        ("asked", 0)
    ]
    assert [r.request_id for r, _ in store.binding_requests_due(0)] == ["revoking"]
    store.close()
    again = RegionStore.open(path)  # opened again: migrated once, nothing changes
    assert [bill.transfer_id for bill, _ in again.requests_due(0)] == ["asked"]
    again.close()
