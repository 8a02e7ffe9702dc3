"""Issue 3's rules through the real cores, delivered in memory (fast, deterministic).

The same rules are exercised over RabbitMQ in tests/integration/test_family_rules_broker.py.
"""

from __future__ import annotations

import pytest

from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    CloseWindow,
    EnrollPerson,
    PayPremium,
    Relationship,
    RequestPremiumPayment,
    RequestWalletTransfer,
    RevokeBinding,
    SetRegionEnabled,
    WindowPosition,
    WindowSummary,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Insurance, PaymentOrder, Scope
from gongji.audit import audit_books
from regions.store import BILLS_PAID, person_account, wallet_account
from tests.cores.world import BEIJING, CHENGDU, CLIENT, SHANGHAI, WUHAN, World, region


def family() -> World:
    w = World(
        region(WUHAN),
        region(CHENGDU, scope=Scope.SCOPE_2021, order=PaymentOrder.COPAYER_FIRST),
        region(SHANGHAI, wallet=False),
        region(BEIJING, enabled=False),
    )
    w.enroll(WUHAN, "A1", Insurance.EMPLOYEE, 100_000)
    w.enroll(WUHAN, "A2", Insurance.RESIDENT)
    w.enroll(SHANGHAI, "S1", Insurance.EMPLOYEE, 100_000)
    w.enroll(CHENGDU, "B1", Insurance.RESIDENT)
    w.enroll(CHENGDU, "B2", Insurance.EMPLOYEE, 3_000)
    w.enroll(CHENGDU, "N1", Insurance.NONE)
    w.enroll(BEIJING, "J1", Insurance.RESIDENT)
    return w


# --- bindings ---


def test_binding_through_the_copayers_region_then_a_bill_uses_it() -> None:
    w = family()
    outcome = w.bind(WUHAN, "r1", "A1", "B1", CHENGDU, Relationship.PARENT)
    assert outcome.outcome == COMMITTED
    assert w.bill(CHENGDU, "t1", "B1", 5_000).outcome == COMMITTED


@pytest.mark.parametrize(
    ("copayer", "secret", "beneficiary", "beneficiary_region", "relationship", "reason"),
    [
        ("A1", "wrong", "B1", CHENGDU, Relationship.PARENT, ReasonCode.IDENTITY_CHECK_FAILED),
        ("A2", None, "B1", CHENGDU, Relationship.PARENT, ReasonCode.NO_PERSONAL_ACCOUNT),
        ("A1", None, "N1", CHENGDU, Relationship.PARENT, ReasonCode.BENEFICIARY_NOT_INSURED),
        ("A1", None, "J1", BEIJING, Relationship.PARENT, ReasonCode.REGION_NOT_ENABLED),
        ("A1", None, "X9", "650100", Relationship.PARENT, ReasonCode.UNKNOWN_REGION),
        # Wuhan (2024 scope) allows siblings; Chengdu (2021 scope) does not.
        ("A1", None, "B1", CHENGDU, Relationship.SIBLING, ReasonCode.POLICY_DISAGREEMENT),
    ],
)
def test_binding_refusals(
    copayer: str,
    secret: str | None,
    beneficiary: str,
    beneficiary_region: str,
    relationship: Relationship,
    reason: ReasonCode,
) -> None:
    w = family()
    outcome = w.bind(WUHAN, "r1", copayer, beneficiary, beneficiary_region, relationship, secret)
    assert outcome.reason is reason, outcome
    assert w.bill(CHENGDU, "t1", "B1", 1_000).reason is ReasonCode.NO_BINDING


def test_policy_disagreement_names_the_refusing_region_and_rule() -> None:
    w = family()
    outcome = w.bind(WUHAN, "r1", "A1", "B1", CHENGDU, Relationship.SIBLING)
    assert CHENGDU in outcome.detail and "2021" in outcome.detail and "sibling" in outcome.detail


def test_revoke_and_insurance_end_stop_bindings() -> None:
    w = family()
    assert w.bind(WUHAN, "r1", "A1", "B1", CHENGDU).outcome == COMMITTED
    w.send(WUHAN, RevokeBinding("r2", "A1", "pw-A1", "r1", CLIENT))
    assert w.bill(CHENGDU, "t1", "B1", 1_000).reason is ReasonCode.NO_BINDING
    assert w.bind(WUHAN, "r3", "A1", "B1", CHENGDU).outcome == COMMITTED
    w.send(CHENGDU, EnrollPerson("B1", Insurance.NONE))  # B1's insurance stops
    w.send(CHENGDU, EnrollPerson("B1", Insurance.RESIDENT))  # and starts again
    assert w.bill(CHENGDU, "t2", "B1", 1_000).reason is ReasonCode.NO_BINDING


# --- payment order ---


def test_payment_order_of_the_beneficiarys_region_governs() -> None:
    w = family()
    w.enroll(WUHAN, "W2", Insurance.EMPLOYEE, 3_000)  # a Wuhan beneficiary: own account first
    w.seed_binding("b1", "A1", WUHAN, "B2", CHENGDU)  # Chengdu: co-payer first
    w.seed_binding("b2", "S1", SHANGHAI, "W2", WUHAN)
    chengdu = w.bill(CHENGDU, "t1", "B2", 10_000)
    assert (chengdu.paid_fen, chengdu.own_paid_fen, chengdu.remaining_fen) == (10_000, 0, 0)
    wuhan = w.bill(WUHAN, "t2", "W2", 10_000)
    assert (wuhan.own_paid_fen, wuhan.paid_fen, wuhan.remaining_fen) == (3_000, 7_000, 0)


def test_copayer_first_falls_back_to_own_account_for_the_rest() -> None:
    w = family()
    w.enroll(WUHAN, "A3", Insurance.EMPLOYEE, 1_000)
    w.seed_binding("b1", "A3", WUHAN, "B2", CHENGDU)
    outcome = w.bill(CHENGDU, "t1", "B2", 5_000)
    assert (outcome.paid_fen, outcome.own_paid_fen, outcome.remaining_fen) == (1_000, 3_000, 1_000)


# --- wallet ---


def wallet(
    w: World,
    tid: str,
    amount: int,
    secret: str = "pw-A1",
    to: str = "B1",
    region_code: str = CHENGDU,
) -> str:
    w.send(WUHAN, RequestWalletTransfer(tid, "A1", secret, to, region_code, amount, CLIENT))
    return w.outcome(tid).outcome


def test_wallet_transfer_then_wallet_pays_a_bill() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    assert wallet(w, "w1", 20_000) == COMMITTED
    assert w.net.regions[CHENGDU].books.available(wallet_account("B1")) == 20_000
    assert w.net.regions[WUHAN].books.available(person_account("A1")) == 80_000
    bill = w.bill(CHENGDU, "t1", "B1", 5_000)
    assert (bill.wallet_paid_fen, bill.paid_fen) == (5_000, 0)


def test_wallet_refusals_and_limits() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    w.enroll(SHANGHAI, "S2", Insurance.RESIDENT)
    w.seed_binding("b2", "A1", WUHAN, "S2", SHANGHAI)
    assert wallet(w, "w0", 1_000, secret="nope") == ReasonCode.IDENTITY_CHECK_FAILED
    assert wallet(w, "w1", 200_001) == ReasonCode.LIMIT_EXCEEDED
    assert wallet(w, "w2", 1_000, to="S2", region_code=SHANGHAI) == ReasonCode.WALLET_NOT_ENABLED
    assert wallet(w, "w3", 1_000, to="N1") == ReasonCode.NO_BINDING
    assert [wallet(w, f"ok{i}", 1_000) for i in range(3)] == [COMMITTED] * 3
    assert wallet(w, "w4", 1_000) == ReasonCode.LIMIT_EXCEEDED  # the fourth of the day
    w.net.now_ms += 86_400_000
    assert wallet(w, "w5", 1_000) == COMMITTED  # a new day


# --- premiums ---


def premium(w: World, tid: str, beneficiary: str = "B1", year: int = 2026) -> str:
    w.send(WUHAN, RequestPremiumPayment(tid, "A1", "pw-A1", beneficiary, CHENGDU, year, CLIENT))
    return w.outcome(tid).outcome


def test_premium_paid_once_per_person_and_year() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    w.seed_binding("b2", "A1", WUHAN, "B2", CHENGDU)
    assert premium(w, "p1") == COMMITTED
    assert w.outcome("p1").paid_fen == 40_000
    assert premium(w, "p2") == ReasonCode.PREMIUM_ALREADY_PAID
    assert premium(w, "p3", year=2027) == COMMITTED
    assert premium(w, "p4", beneficiary="B2") == ReasonCode.NOT_RESIDENT_INSURED
    assert w.net.regions[WUHAN].books.available(person_account("A1")) == 20_000
    audit = audit_books({c: r.books for c, r in w.net.regions.items()})
    assert audit.conserved and audit.books_balanced, audit.problems


def test_wallet_pays_a_premium_locally() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    assert wallet(w, "w1", 50_000) == COMMITTED
    w.send(CHENGDU, PayPremium("p1", "B1", 2026, CLIENT))
    assert w.outcome("p1").outcome == COMMITTED
    assert premium(w, "p2") == ReasonCode.PREMIUM_ALREADY_PAID
    assert w.net.regions[CHENGDU].books.available(wallet_account("B1")) == 10_000


# --- roll-out ---


def test_live_enablement() -> None:
    w = family()
    w.enroll(BEIJING, "J2", Insurance.EMPLOYEE, 9_000)
    w.seed_binding("b1", "J2", BEIJING, "B1", CHENGDU)
    assert w.bill(CHENGDU, "t1", "B1", 1_000).reason is ReasonCode.REGION_NOT_ENABLED
    w.net.send(CLEARINGHOUSE, SetRegionEnabled(BEIJING, True))
    assert w.bill(CHENGDU, "t2", "B1", 1_000).outcome == COMMITTED
    w.net.send(CLEARINGHOUSE, SetRegionEnabled(BEIJING, False))
    assert w.bill(CHENGDU, "t3", "B1", 1_000).reason is ReasonCode.REGION_NOT_ENABLED
    assert w.net.regions[BEIJING].store.holds_by_state() == {"posted": 1}


# --- clearing and reconciliation ---


def close_window(w: World, request_id: str) -> tuple[WindowSummary, list[WindowPosition]]:
    w.net.send(CLEARINGHOUSE, CloseWindow(request_id, CLIENT))
    w.net.deliver_all()
    summaries = [r for r in w.net.replies if isinstance(r, WindowSummary)]
    positions = [r for r in w.net.replies if isinstance(r, WindowPosition)]
    w.net.replies.clear()
    return summaries[-1], positions


def test_window_net_positions_sum_to_zero_and_regions_reconcile() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    w.seed_binding("b2", "S1", SHANGHAI, "B2", CHENGDU)
    for i in range(5):
        w.bill(CHENGDU, f"t{i}", "B1" if i % 2 else "B2", 2_000 + i)
    summary, positions = close_window(w, "close-1")
    assert summary.transfers == 5 and summary.window == 1
    assert sum(p.net_fen for p in positions) == 0
    assert {p.region for p in positions if p.paid_fen or p.received_fen} == {
        WUHAN,
        CHENGDU,
        SHANGHAI,
    }
    assert [p.region for p in positions if not p.taking_part] == [BEIJING]  # disabled
    clearing = w.net.clearinghouse.store.reconciliations(1)
    assert clearing and all(n == 0 for n in clearing.values())


def test_lost_commit_is_found_and_repaired() -> None:
    w = family()
    w.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    assert w.bill(CHENGDU, "t1", "B1", 5_000).outcome == COMMITTED
    chengdu = w.net.regions[CHENGDU]
    # Chengdu loses the credit (as if restored from a backup taken before it).
    db = chengdu.store.db
    with db.transaction():
        db.connection.execute("DELETE FROM credits")
        db.connection.execute("DELETE FROM journal WHERE transfer_id = 't1'")
        db.connection.execute(
            "UPDATE ledger_accounts SET credits_posted = credits_posted - 5000 WHERE id = ?",
            (BILLS_PAID,),
        )
        db.connection.execute(
            "UPDATE ledger_accounts SET debits_posted = debits_posted - 5000"
            " WHERE id = 'interregion:420100'"
        )
    db.forget_cached()  # a restored file is served by a restarted region, not from memory
    close_window(w, "close-1")
    found = w.net.clearinghouse.store.disagreements(1)
    assert [(d.region, d.transfer_id, d.kind, d.state) for d in found] == [
        (CHENGDU, "t1", "missing_here", "repaired")
    ]
    assert chengdu.store.credit_amount("t1") == 5_000
    audit = audit_books({c: r.books for c, r in w.net.regions.items()})
    assert audit.conserved and audit.books_balanced, audit.problems
