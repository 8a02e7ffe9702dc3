"""The co-payment flow through the real cores, delivered in memory (no broker)."""

from __future__ import annotations

from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.store import TransferState
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    Commit,
    Credit,
    EnrollPerson,
    Insurance,
    RecordBinding,
    RegisterRegion,
    Relationship,
    Repair,
    Reserve,
    SubmitBill,
)
from contracts.reasons import COMMITTED, ReasonCode
from gongji.loopback import Loopback
from regions.store import BILLS_PAID, HoldState, person_account

WUHAN, CHENGDU, SHANGHAI, GUANGZHOU = "420100", "510100", "310000", "440100"
CLIENT = "client.test"


def world(settings: CoordinatorSettings | None = None) -> Loopback:
    net = Loopback([WUHAN, CHENGDU, SHANGHAI, GUANGZHOU], settings)
    for code, enabled in ((WUHAN, True), (CHENGDU, True), (SHANGHAI, True), (GUANGZHOU, False)):
        net.send(CLEARINGHOUSE, RegisterRegion(code, f"region {code}", "p", enabled))
    net.send(region_address(WUHAN), EnrollPerson("A1", Insurance.EMPLOYEE, 50_000))
    net.send(region_address(SHANGHAI), EnrollPerson("A2", Insurance.EMPLOYEE, 80_000))
    net.send(region_address(WUHAN), EnrollPerson("A0", Insurance.EMPLOYEE, 0))
    net.send(region_address(GUANGZHOU), EnrollPerson("G1", Insurance.EMPLOYEE, 90_000))
    for psn in ("B1", "B2", "B3", "B4", "B5"):
        net.send(region_address(CHENGDU), EnrollPerson(psn, Insurance.RESIDENT))
    net.send(region_address(CHENGDU), EnrollPerson("N1", Insurance.NONE))
    bind = [
        ("b1", "A1", WUHAN, "B1"),
        ("b2a", "A1", WUHAN, "B2"),
        ("b2b", "A2", SHANGHAI, "B2"),
        ("b3", "A0", WUHAN, "B3"),
        ("b4", "G1", GUANGZHOU, "B4"),
    ]
    for bid, payer, payer_region, beneficiary in bind:
        net.send(
            CLEARINGHOUSE,
            RecordBinding(bid, payer, payer_region, beneficiary, CHENGDU, Relationship.PARENT),
        )
    net.deliver_all()
    return net


def bill(net: Loopback, tid: str, beneficiary: str, amount: int) -> None:
    net.send(region_address(CHENGDU), SubmitBill(tid, beneficiary, amount, CLIENT))
    net.deliver_all()


def test_full_copayment_moves_money_in_both_regions() -> None:
    net = world()
    bill(net, "t1", "B1", 12_000)
    [outcome] = net.outcomes["t1"]
    assert (outcome.outcome, outcome.paid_fen, outcome.remaining_fen) == (COMMITTED, 12_000, 0)
    wuhan, chengdu = net.regions[WUHAN].books, net.regions[CHENGDU].books
    assert wuhan.available(person_account("A1")) == 38_000
    assert chengdu.totals(BILLS_PAID) is not None
    assert chengdu.sum_posted_balance(BILLS_PAID) == 12_000
    t = net.clearinghouse.store.transfer("t1")
    assert t is not None and t.state is TransferState.COMMITTED
    for region in net.regions.values():
        assert region.books.check() == []


def test_partial_payment_when_balance_below_bill() -> None:
    net = world()
    bill(net, "t1", "B1", 70_000)
    [outcome] = net.outcomes["t1"]
    assert (outcome.outcome, outcome.paid_fen, outcome.remaining_fen) == (COMMITTED, 50_000, 20_000)
    assert net.regions[WUHAN].books.available(person_account("A1")) == 0


def test_several_copayers_largest_balance_pays_alone() -> None:
    net = world()
    bill(net, "t1", "B2", 100_000)
    [outcome] = net.outcomes["t1"]
    assert (outcome.payer_region, outcome.paid_fen, outcome.remaining_fen) == (
        SHANGHAI,
        80_000,
        20_000,
    )
    assert net.regions[WUHAN].books.available(person_account("A1")) == 50_000


def test_refusals_hold_nothing() -> None:
    net = world()
    bill(net, "t-none", "B5", 100)
    bill(net, "t-zero", "B3", 100)
    bill(net, "t-off", "B4", 100)
    bill(net, "t-uninsured", "N1", 100)
    got = {tid: net.outcomes[tid][0].outcome for tid in net.outcomes}
    assert got == {
        "t-none": ReasonCode.NO_BINDING,
        "t-zero": ReasonCode.ZERO_BALANCE,
        "t-off": ReasonCode.REGION_NOT_ENABLED,
        "t-uninsured": ReasonCode.BENEFICIARY_NOT_INSURED,
    }
    assert net.regions[GUANGZHOU].store.holds_by_state() == {}


def test_duplicate_request_same_content_and_mismatch() -> None:
    net = world()
    bill(net, "t1", "B1", 1_000)
    bill(net, "t1", "B1", 1_000)
    assert [o.outcome for o in net.outcomes["t1"]] == [COMMITTED, COMMITTED]
    assert net.regions[WUHAN].books.available(person_account("A1")) == 49_000
    bill(net, "t1", "B1", 2_000)
    assert net.outcomes["t1"][-1].outcome == ReasonCode.DUPLICATE_MISMATCH
    assert net.regions[WUHAN].books.available(person_account("A1")) == 49_000


def test_silent_payer_times_out_and_hold_is_released() -> None:
    settings = CoordinatorSettings(reserve_timeout_ms=1_000)
    net = world(settings)
    net.send(region_address(CHENGDU), SubmitBill("t1", "B1", 5_000, CLIENT))
    # Deliver everything except what goes to Wuhan (the payer is down).
    held_back = []
    while net.queue:
        item = net.queue.popleft()
        if item.address == region_address(WUHAN):
            held_back.append(item)
        else:
            net._deliver(item)
    net.advance(1_500)
    while net.queue:
        item = net.queue.popleft()
        if item.address == region_address(WUHAN):
            held_back.append(item)
        else:
            net._deliver(item)
    assert net.outcomes["t1"][0].outcome == ReasonCode.TIMEOUT
    # Wuhan comes back: the reserve and then the abort arrive; nothing stays held or posted.
    net.queue.extend(held_back)
    net.deliver_all()
    wuhan = net.regions[WUHAN]
    assert wuhan.books.available(person_account("A1")) == 50_000
    assert wuhan.store.holds_by_state() == {HoldState.RELEASED_BY_ABORT.value: 1}
    assert wuhan.books.check() == []
    # The late hold is released without telling the payee region its outcome twice.
    assert len(net.outcomes["t1"]) == 1


def test_redelivered_reserve_and_commit_change_nothing() -> None:
    net = world()
    bill(net, "t1", "B1", 3_000)
    wuhan = net.regions[WUHAN]
    before = wuhan.books.all_totals()
    for op in (Reserve("t1", "A1", 3_000, CHENGDU, 60_000), Commit("t1")):
        net.send(region_address(WUHAN), op)
        net.deliver_all()
    assert wuhan.books.all_totals() == before
    assert len(net.outcomes["t1"]) == 1


def test_hold_expiring_before_commit_aborts_without_credit() -> None:
    settings = CoordinatorSettings(hold_timeout_ms=1_000, reserve_timeout_ms=500)
    net = world(settings)
    net.send(region_address(CHENGDU), SubmitBill("t1", "B1", 5_000, CLIENT))
    # Run until the Commit is about to reach Wuhan, then let the hold expire first.
    while net.queue and not isinstance(net.queue[0].op, Commit):
        net._deliver(net.queue.popleft())
    assert isinstance(net.queue[0].op, Commit)
    net.now_ms += 2_000
    net.deliver_all()
    [outcome] = net.outcomes["t1"]
    assert outcome.outcome == ReasonCode.HOLD_EXPIRED
    assert net.regions[WUHAN].books.available(person_account("A1")) == 50_000
    assert net.regions[CHENGDU].books.sum_posted_balance(BILLS_PAID) == 0


def test_a_copayer_region_silent_during_quotes_is_left_out_and_named() -> None:
    net = world(CoordinatorSettings(quote_timeout_ms=1_000))
    net.send(region_address(CHENGDU), SubmitBill("t1", "B2", 10_000, CLIENT))
    # Shanghai (A2, the larger balance) does not answer the balance query in time.
    held_back = []
    while net.queue:
        item = net.queue.popleft()
        if item.address == region_address(SHANGHAI):
            held_back.append(item)
        else:
            net._deliver(item)
    net.advance(1_500)
    net.deliver_all()
    [outcome] = net.outcomes["t1"]
    assert (outcome.outcome, outcome.payer_region, outcome.paid_fen) == (COMMITTED, WUHAN, 10_000)
    assert "left out" in outcome.detail and SHANGHAI in outcome.detail
    net.queue.extend(held_back)  # the late quote changes nothing
    net.deliver_all()
    assert net.regions[SHANGHAI].books.available(person_account("A2")) == 80_000


def test_a_lost_credit_repaired_by_reconciliation_tells_the_submitter() -> None:
    """The payee region never got the credit; the clearinghouse's repair books it, and
    the bill's outcome reaches the hospital, as if the credit had come."""
    net = world()
    net.send(region_address(CHENGDU), SubmitBill("t9", "B1", 12_000, CLIENT))
    while net.queue:
        item = net.queue.popleft()
        if not isinstance(item.op, Credit):
            net._deliver(item)
    assert "t9" not in net.outcomes
    net.send(region_address(CHENGDU), Repair("t9", 1, "payee", "B1", WUHAN, 12_000))
    net.deliver_all()
    [outcome] = net.outcomes["t9"]
    assert (outcome.outcome, outcome.paid_fen) == (COMMITTED, 12_000)
    assert net.regions[CHENGDU].books.sum_posted_balance(BILLS_PAID) == 12_000
