"""Care away from home (异地就医) through the real cores, delivered in memory (no broker):
registration (备案) at the insured region, and bills at the region of care."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clearinghouse.store import TransferState
from contracts.effects import WindowClosed
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    AwayRegistrationOutcome,
    BillOutcome,
    CloseWindow,
    EnrollPerson,
    Insurance,
    RecordBinding,
    RegisterRegion,
    Relationship,
    RequestAwayRegistration,
    RequestWalletTransfer,
    RevokeAwayRegistration,
    SubmitAwayBill,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Flow, PaymentOrder
from gongji.loopback import Loopback
from regions.core import RegionCore
from regions.store import BILLS_PAID, RegionStore, person_account, wallet_account

HENAN, GUANGZHOU, SHANGHAI, BEIJING = "410100", "440100", "310000", "110000"
"""Insured region (Zhengzhou), a region of care that settles directly, a third region, and
a region of care that does not."""
CLIENT = "client.test"
DAY_MS = 86_400_000


def world() -> Loopback:
    net = Loopback([HENAN, GUANGZHOU, SHANGHAI, BEIJING])
    for code, direct in ((HENAN, True), (GUANGZHOU, True), (SHANGHAI, True), (BEIJING, False)):
        register = RegisterRegion(
            code,
            f"region {code}",
            "p",
            True,
            direct_settlement=direct,
            catalogue_share_permille=800,
        )
        net.send(CLEARINGHOUSE, register)
    net.send(region_address(HENAN), EnrollPerson("P1", Insurance.RESIDENT, secret="s1"))
    net.send(region_address(HENAN), EnrollPerson("P2", Insurance.EMPLOYEE, 10_000, "s2"))
    net.send(region_address(HENAN), EnrollPerson("N1", Insurance.NONE, secret="n1"))
    net.deliver_all()
    return net


def register_away(
    net: Loopback,
    rid: str,
    psn: str,
    care: str,
    *,
    secret: str,
    from_ms: int = 0,
    until_ms: int = 0,
) -> AwayRegistrationOutcome:
    request = RequestAwayRegistration(rid, psn, secret, care, from_ms, until_ms, CLIENT)
    net.send(region_address(HENAN), request)
    net.deliver_all()
    [answer] = [r for r in net.replies if isinstance(r, AwayRegistrationOutcome)][-1:]
    assert answer.request_id == rid
    return answer


def test_registration_is_recorded_by_both_the_insured_region_and_the_directory() -> None:
    net = world()
    outcome = register_away(net, "r1", "P1", GUANGZHOU, secret="s1", until_ms=30 * DAY_MS)
    assert (outcome.outcome, outcome.registration_id) == (COMMITTED, "r1")
    henan = net.regions[HENAN].store.away_requests
    assert [state for _, state, _ in henan.history("r1")] == ["requested", "recorded"]
    recorded = net.clearinghouse.store.away_registrations.get("r1")
    assert recorded is not None
    assert (recorded.beneficiary, recorded.insured_region, recorded.care_region) == (
        "P1",
        HENAN,
        GUANGZHOU,
    )
    assert (recorded.status, recorded.until_ms) == ("active", 30 * DAY_MS)


def test_registration_refusals_have_one_cause_each() -> None:
    net = world()
    got = {
        "r-bad-secret": register_away(net, "r-bad-secret", "P1", GUANGZHOU, secret="x"),
        "r-uninsured": register_away(net, "r-uninsured", "N1", GUANGZHOU, secret="n1"),
        "r-unknown-region": register_away(net, "r-unknown-region", "P1", "530100", secret="s1"),
        "r-not-direct": register_away(net, "r-not-direct", "P1", BEIJING, secret="s1"),
        "r-home": register_away(net, "r-home", "P1", HENAN, secret="s1"),
        "r-period": register_away(
            net, "r-period", "P1", GUANGZHOU, secret="s1", from_ms=DAY_MS, until_ms=DAY_MS
        ),
    }
    assert {rid: o.outcome for rid, o in got.items()} == {
        "r-bad-secret": ReasonCode.IDENTITY_CHECK_FAILED,
        "r-uninsured": ReasonCode.BENEFICIARY_NOT_INSURED,
        "r-unknown-region": ReasonCode.UNKNOWN_REGION,
        "r-not-direct": ReasonCode.CARE_REGION_NOT_ENABLED,
        "r-home": ReasonCode.CARE_NOT_AWAY,
        "r-period": ReasonCode.INVALID_PERIOD,
    }
    # Refused before the directory (identity) or by it: nothing is active.
    registrations = net.clearinghouse.store.away_registrations
    assert registrations.get("r-bad-secret") is None
    refused = registrations.get("r-not-direct")
    assert refused is not None and refused.status == "refused"


def test_registration_asked_again_is_answered_again_and_revocation_ends_it() -> None:
    net = world()
    register_away(net, "r1", "P1", GUANGZHOU, secret="s1")
    again = register_away(net, "r1", "P1", GUANGZHOU, secret="s1")
    assert again.outcome == COMMITTED
    assert len(net.regions[HENAN].store.away_requests.history("r1")) == 2
    net.send(region_address(HENAN), RevokeAwayRegistration("u1", "P1", "s1", "r1", CLIENT))
    net.send(region_address(HENAN), RevokeAwayRegistration("u2", "P1", "s1", "nope", CLIENT))
    net.deliver_all()
    answers = {r.request_id: r for r in net.replies if isinstance(r, AwayRegistrationOutcome)}
    assert answers["u1"].outcome == COMMITTED
    assert answers["u2"].outcome == ReasonCode.UNKNOWN_REGISTRATION
    recorded = net.clearinghouse.store.away_registrations.get("r1")
    assert recorded is not None and recorded.status == "revoked"


# --- bills at the region of care ----------------------------------------------------------


def family(net: Loopback, *, copayer_region: str) -> None:
    """P1 (Henan, resident, no own account) is registered for care in Guangzhou; P2 (Henan,
    employee) for care in Shanghai. Their son S1 works in ``copayer_region``."""
    net.send(region_address(copayer_region), EnrollPerson("S1", Insurance.EMPLOYEE, 50_000, "s"))
    net.send(
        CLEARINGHOUSE,
        RecordBinding("b1", "S1", copayer_region, "P1", HENAN, Relationship.PARENT),
    )
    net.send(
        CLEARINGHOUSE,
        RecordBinding("b2", "S1", copayer_region, "P2", HENAN, Relationship.PARENT),
    )
    net.deliver_all()
    register_away(net, "r1", "P1", GUANGZHOU, secret="s1")
    register_away(net, "r2", "P2", SHANGHAI, secret="s2")


def away_bill(net: Loopback, tid: str, psn: str, care: str, amount: int) -> BillOutcome:
    net.send(region_address(care), SubmitAwayBill(tid, psn, HENAN, amount, CLIENT))
    net.deliver_all()
    return net.outcomes[tid][-1]


def check_books(net: Loopback) -> None:
    for region in net.regions.values():
        assert region.books.check() == []
        assert region.store.holds_by_state().get("prepared", 0) == 0


def test_copayer_in_the_region_of_care_pays_what_the_own_account_cannot() -> None:
    net = world()
    family(net, copayer_region=GUANGZHOU)
    # 10,000 fen bill, 80 % within Guangzhou's catalogue: 8,000 to pay from accounts.
    outcome = away_bill(net, "t1", "P1", GUANGZHOU, 10_000)
    assert (outcome.outcome, outcome.flow) == (COMMITTED, Flow.AWAY)
    assert (outcome.wallet_paid_fen, outcome.own_paid_fen, outcome.paid_fen) == (0, 0, 8_000)
    assert (outcome.payer_region, outcome.remaining_fen) == (GUANGZHOU, 2_000)
    guangzhou = net.regions[GUANGZHOU]
    assert guangzhou.books.available(person_account("S1")) == 42_000
    assert guangzhou.books.sum_posted_balance(BILLS_PAID) == 8_000
    t = net.clearinghouse.store.transfer("t1")
    assert t is not None and t.state is TransferState.COMMITTED
    check_books(net)


def test_copayer_in_a_third_region_and_own_account_first() -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    # P2 has 10,000 fen of his own; own first (Henan's default): own 10,000, son 6,000.
    outcome = away_bill(net, "t1", "P2", SHANGHAI, 20_000)
    assert (outcome.own_paid_fen, outcome.paid_fen, outcome.remaining_fen) == (10_000, 6_000, 4_000)
    assert net.regions[HENAN].books.available(person_account("P2")) == 0
    assert net.regions[SHANGHAI].books.available(person_account("S1")) == 44_000
    check_books(net)
    # Three regions: Henan and Shanghai's son pay, Shanghai (the region of care) is paid.
    net.send(CLEARINGHOUSE, CloseWindow("w1", ""))
    net.deliver_all()
    [closed] = [e for e in net.events[CLEARINGHOUSE] if isinstance(e, WindowClosed)]
    assert dict(closed.positions) == {HENAN: -10_000, SHANGHAI: 10_000}
    assert sum(net for _, net in closed.positions) == 0
    for code in (HENAN, SHANGHAI):
        report = net.regions[code].store.settlement_report(1)
        assert report is not None and report.disagreements == 0


def test_a_three_region_bill_clears_to_zero_and_every_region_reconciles() -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    outcome = away_bill(net, "t1", "P2", GUANGZHOU, 20_000)
    assert outcome.outcome == ReasonCode.NOT_REGISTERED_AWAY  # P2 registered Shanghai only
    register_away(net, "r3", "P2", GUANGZHOU, secret="s2")
    outcome = away_bill(net, "t2", "P2", GUANGZHOU, 20_000)  # 16,000 in the catalogue
    assert (outcome.own_paid_fen, outcome.paid_fen) == (10_000, 6_000)
    net.send(CLEARINGHOUSE, CloseWindow("w1", ""))
    net.deliver_all()
    [closed] = [e for e in net.events[CLEARINGHOUSE] if isinstance(e, WindowClosed)]
    assert dict(closed.positions) == {HENAN: -10_000, SHANGHAI: -6_000, GUANGZHOU: 16_000}
    for code in (HENAN, SHANGHAI, GUANGZHOU):
        report = net.regions[code].store.settlement_report(1)
        assert report is not None and report.disagreements == 0, code


def test_copayer_first_insured_region_pays_the_copayer_before_the_own_account() -> None:
    net = world()
    net.send(
        CLEARINGHOUSE,
        RegisterRegion(HENAN, "region", "p", True, payment_order=PaymentOrder.COPAYER_FIRST),
    )
    family(net, copayer_region=SHANGHAI)
    outcome = away_bill(net, "t1", "P2", SHANGHAI, 20_000)  # 16,000 in the catalogue
    assert (outcome.paid_fen, outcome.own_paid_fen, outcome.remaining_fen) == (16_000, 0, 4_000)
    assert net.regions[HENAN].books.available(person_account("P2")) == 10_000
    check_books(net)


def test_the_wallet_pays_first_whatever_the_order() -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    net.send(
        CLEARINGHOUSE,
        RecordBinding("b3", "S1", SHANGHAI, "P2", HENAN, Relationship.PARENT),
    )
    net.send(
        region_address(SHANGHAI),
        RequestWalletTransfer("w1", "S1", "s", "P1", HENAN, 3_000, CLIENT),
    )
    net.deliver_all()
    assert net.outcomes["w1"][-1].outcome == COMMITTED
    outcome = away_bill(net, "t1", "P1", GUANGZHOU, 10_000)  # 8,000 in the catalogue
    assert (outcome.wallet_paid_fen, outcome.own_paid_fen, outcome.paid_fen) == (3_000, 0, 5_000)
    assert net.regions[HENAN].books.available(wallet_account("P1")) == 0
    check_books(net)


def test_refusals_of_a_bill_hold_nothing() -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    register_away(net, "r-old", "P2", GUANGZHOU, secret="s2", until_ms=DAY_MS)
    register_away(net, "r-late", "P1", SHANGHAI, secret="s1", from_ms=5 * DAY_MS)
    net.now_ms = 2 * DAY_MS
    got = {
        "t-none": away_bill(net, "t-none", "N1", GUANGZHOU, 1_000),
        "t-home": away_bill(net, "t-home", "P1", HENAN, 1_000),
        "t-expired": away_bill(net, "t-expired", "P2", GUANGZHOU, 1_000),
        "t-later": away_bill(net, "t-later", "P1", SHANGHAI, 1_000),
        "t-beijing": away_bill(net, "t-beijing", "P1", BEIJING, 1_000),
        "t-zero": away_bill(net, "t-zero", "P1", GUANGZHOU, 0),
    }
    assert {tid: o.outcome for tid, o in got.items()} == {
        "t-none": ReasonCode.NOT_REGISTERED_AWAY,
        "t-home": ReasonCode.CARE_NOT_AWAY,
        "t-expired": ReasonCode.REGISTRATION_EXPIRED,
        "t-later": ReasonCode.REGISTRATION_NOT_STARTED,
        "t-beijing": ReasonCode.CARE_REGION_NOT_ENABLED,
        "t-zero": ReasonCode.INVALID_AMOUNT,
    }
    for region in net.regions.values():
        assert region.store.holds_by_state() == {}
    check_books(net)


def test_a_duplicate_bill_is_paid_once() -> None:
    net = world()
    family(net, copayer_region=GUANGZHOU)
    first = away_bill(net, "t1", "P1", GUANGZHOU, 1_000)
    again = away_bill(net, "t1", "P1", GUANGZHOU, 1_000)
    assert (first.outcome, again.outcome) == (COMMITTED, COMMITTED)
    assert again.paid_fen == first.paid_fen == 800
    assert net.regions[GUANGZHOU].books.available(person_account("S1")) == 49_200
    other = away_bill(net, "t1", "P1", GUANGZHOU, 2_000)
    assert other.outcome == ReasonCode.DUPLICATE_MISMATCH
    assert net.regions[GUANGZHOU].books.available(person_account("S1")) == 49_200


def test_a_lost_registration_is_asked_again_by_the_insured_region() -> None:
    net = world()
    net.send(
        region_address(HENAN), RequestAwayRegistration("r1", "P1", "s1", GUANGZHOU, 0, 0, CLIENT)
    )
    net._deliver(net.queue.popleft())  # the insured region forwards it ...
    lost = net.queue.popleft()  # ... and the proposal is lost
    assert lost.address == CLEARINGHOUSE
    net.advance(5_000)  # the re-send timer
    net.deliver_all()
    [answer] = [r for r in net.replies if isinstance(r, AwayRegistrationOutcome)]
    assert answer.outcome == COMMITTED
    net.advance(60_000)
    net.deliver_all()
    assert len([r for r in net.replies if isinstance(r, AwayRegistrationOutcome)]) == 1


def test_a_region_of_care_restored_from_a_backup_is_repaired_leg_by_leg(tmp_path: Path) -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    register_away(net, "r3", "P2", GUANGZHOU, secret="s2")
    backup = tmp_path / "guangzhou.sqlite"
    file = sqlite3.connect(backup)
    try:
        net.regions[GUANGZHOU].store.db.connection.backup(file)
    finally:
        file.close()
    outcome = away_bill(net, "t1", "P2", GUANGZHOU, 20_000)
    assert (outcome.own_paid_fen, outcome.paid_fen) == (10_000, 6_000)
    # Guangzhou loses both legs' credits: its file is restored from before the bill.
    net.regions[GUANGZHOU].store.close()
    net.regions[GUANGZHOU] = RegionCore(GUANGZHOU, RegionStore.open(backup))
    net.send(CLEARINGHOUSE, CloseWindow("w1", ""))
    net.deliver_all()
    found = net.clearinghouse.store.disagreements(1)
    assert {(d.region, d.transfer_id, d.state) for d in found} == {
        (GUANGZHOU, "t1:o", "repaired"),
        (GUANGZHOU, "t1:c", "repaired"),
    }
    guangzhou = net.regions[GUANGZHOU].store
    assert (guangzhou.credit_amount("t1:o"), guangzhou.credit_amount("t1:c")) == (10_000, 6_000)
    report = guangzhou.settlement_report(1)
    assert report is not None and report.disagreements == 0
    check_books(net)


def test_an_insured_region_restored_from_a_backup_reposts_its_wallet_and_own_legs(
    tmp_path: Path,
) -> None:
    net = world()
    family(net, copayer_region=SHANGHAI)
    net.send(
        region_address(SHANGHAI),
        RequestWalletTransfer("w1", "S1", "s", "P2", HENAN, 3_000, CLIENT),
    )
    net.deliver_all()
    register_away(net, "r3", "P2", GUANGZHOU, secret="s2")
    backup = tmp_path / "henan.sqlite"
    file = sqlite3.connect(backup)
    try:
        net.regions[HENAN].store.db.connection.backup(file)
    finally:
        file.close()
    outcome = away_bill(net, "t1", "P2", GUANGZHOU, 20_000)  # 16,000 in the catalogue
    assert (outcome.wallet_paid_fen, outcome.own_paid_fen, outcome.paid_fen) == (
        3_000,
        10_000,
        3_000,
    )
    # Henan loses both of its legs: its file is restored from before the bill.
    net.regions[HENAN].store.close()
    net.regions[HENAN] = RegionCore(HENAN, RegionStore.open(backup))
    net.send(CLEARINGHOUSE, CloseWindow("w1", ""))
    net.deliver_all()
    found = net.clearinghouse.store.disagreements(1)
    assert {(d.region, d.transfer_id, d.state) for d in found} == {
        (HENAN, "t1:w", "repaired"),
        (HENAN, "t1:o", "repaired"),
    }
    henan = net.regions[HENAN]
    # Each leg is posted again on the account it was held on.
    assert henan.books.available(wallet_account("P2")) == 0
    assert henan.books.available(person_account("P2")) == 0
    check_books(net)
