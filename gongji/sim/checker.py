"""The invariants that prove money is safe, checked during a run and at its end.

During the run (between steps, when no transaction is open) every transfer touched since
the last check is checked across the region that took the request, the payer region, the
payee region and the clearinghouse, and cheap aggregates check that money is conserved
with what is in flight. At the end, after the faults heal and the network goes quiet,
everything is checked in bulk, including liveness (every request reached its final
outcome everywhere) and clearing (every committed cross-region transfer cleared once,
net positions summing to zero, every region's reconciliation clean).
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.operations import BillOutcome
from contracts.reasons import COMMITTED
from contracts.vocabulary import Flow
from gongji.audit import audit_books
from gongji.settlement_audit import (
    check_settlement,
    read_clearinghouse_settlement,
    read_region_settlement,
)
from gongji.sim import views
from gongji.sim.views import (
    ABORT_STATES,
    ABORTED,
    COMMITTING,
    CREDITING,
    FINAL_STATES,
    PENDING,
    POSTED,
    SETTLED,
)
from gongji.sim.views import COMMITTED as CH_COMMITTED
from gongji.sim.workload import Request
from regions.books import Books
from regions.store import OPENING_FUND

INVARIANTS: tuple[str, ...] = (
    "agreement",
    "exactly_once",
    "conservation",
    "no_negative_balance",
    "books_balance",
    "bilateral_positions",
    "clearing",
    "net_positions_zero",
    "reconciliation",
    "settlement",
    "liveness",
    "no_anomaly",
)
"""Names of the invariants, as they appear in ``invariants_checked`` and violations."""

MAX_VIOLATIONS = 200
"""Violations kept in full; more are counted only."""

Report = Callable[[str], None]
"""Reports one problem of one invariant about one transfer (see ``Checker.reporter``)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: which, where, when, and what was seen."""

    invariant: str
    detail: str
    transfer_id: str = ""
    at_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "transfer_id": self.transfer_id,
            "at_ms": self.at_ms,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        where = f" [{self.transfer_id}]" if self.transfer_id else ""
        return f"{self.at_ms} ms {self.invariant}{where}: {self.detail}"


def _name(reason: str | None) -> str:
    return COMMITTED if reason is None else reason


class Checker:
    """Checks the stores of one simulated network; collects violations."""

    def __init__(
        self,
        region_sql: Mapping[str, sqlite3.Connection],
        region_books: Mapping[str, Books],
        clearinghouse_sql: sqlite3.Connection,
        requests: Mapping[str, Request],
        expected_opening_fen: int,
    ) -> None:
        self.region_sql = region_sql
        self.region_books = region_books
        self.ch = clearinghouse_sql
        self.requests = requests
        self.expected_opening_fen = expected_opening_fen
        self.checked: Counter[str] = Counter({name: 0 for name in INVARIANTS})
        self.violations: list[Violation] = []
        self.violation_count = 0
        self._seen: set[tuple[str, str, str]] = set()

    def fail(self, invariant: str, detail: str, transfer_id: str = "", at_ms: int = 0) -> None:
        # One report per invariant, transfer and kind of problem: a stuck transfer seen at
        # every check is one violation, not one per check.
        key = (invariant, transfer_id, detail)
        if key in self._seen:
            return
        self._seen.add(key)
        self.violation_count += 1
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(Violation(invariant, detail, transfer_id, at_ms))

    def reporter(self, invariant: str, transfer_id: str, now_ms: int) -> Report:
        """``fail`` with the invariant, transfer and time filled in."""
        return lambda detail: self.fail(invariant, detail, transfer_id, now_ms)

    def involved_transfers(self, limit: int = 5) -> list[str]:
        """Transfer ids named by the first violations (for a readable trace)."""
        out: list[str] = []
        for v in self.violations:
            if v.transfer_id and v.transfer_id not in out:
                out.append(v.transfer_id)
            if len(out) >= limit:
                break
        return out

    # --- during the run ---

    def anomaly(self, address: str, transfer_id: str, what: str, now_ms: int) -> None:
        """A core said something happened that a correct protocol never does."""
        self.checked["no_anomaly"] += 1
        self.fail("no_anomaly", f"{address}: {what}", transfer_id, now_ms)

    def disagreed(self, region: str, transfer_id: str, kind: str, window: int, now_ms: int) -> None:
        """A region's reconciliation found its books differ from a settlement report."""
        self.checked["reconciliation"] += 1
        detail = f"{kind}: region {region} disagrees with window {window}"
        self.fail("reconciliation", detail, transfer_id, now_ms)

    def window_closed(self, window: int, positions: Sequence[tuple[str, int]], now_ms: int) -> None:
        """The net positions of a closed clearing window sum to zero."""
        self.checked["net_positions_zero"] += 1
        total = sum(net for _, net in positions)
        if total != 0:
            self.fail(
                "net_positions_zero", f"window {window} positions sum to {total} fen", "", now_ms
            )

    def transfer(self, tid: str, now_ms: int) -> None:
        """Safety of one transfer at this instant, across every party to it.

        Negative balances are checked for every region at each checkpoint
        (``aggregates``), repeated journal entries with the books (``books``): cheaper
        than per transfer here.
        """
        request = self.requests.get(tid)
        if request is None:
            return
        t = views.transfer(self.ch, tid)
        bill = views.bill(self.region_sql[request.region], tid)
        payee = t.payee_region if t is not None else request.region
        payee_sql = self.region_sql.get(payee)
        credit = views.credit(payee_sql, tid) if payee_sql is not None else None
        payer = t.payer_region if t is not None else ""
        payer_sql = self.region_sql.get(payer) if payer else None
        hold = views.hold(payer_sql, tid) if payer_sql is not None else None
        self.checked["agreement"] += 1
        bad = self.reporter("agreement", tid, now_ms)
        _agree(bad, t, hold, credit, payer, payee)
        if bill is not None and bill.state == SETTLED:
            _settled(bad, request.region, bill, t, credit)

    def aggregates(self, now_ms: int) -> None:
        """Money conserved with what is in flight; nothing negative. Cheap: sums in SQLite."""
        positions = posted = credited = opening = 0
        for code, sql in self.region_sql.items():
            books = self.region_books[code]
            # Settlement moves positions into the advances (and top-ups between a
            # region's fund and its advance): in-flight money is in either.
            positions += books.sum_posted_balance("interregion:")
            positions += books.sum_posted_balance("settlement:")
            posted += views.posted_holds_fen(sql)
            credited += views.credits_fen(sql)
            opening -= books.sum_posted_balance(OPENING_FUND)
            self._no_negative(code, now_ms)
        self.checked["conservation"] += 1
        in_flight = posted - credited
        if positions != in_flight or in_flight < 0:
            detail = (
                f"inter-region positions sum to {positions} fen but payers posted {posted} "
                f"and payees were credited {credited}"
            )
            self.fail("conservation", detail, "", now_ms)
        self._opening(opening, now_ms)

    def books(self, code: str, now_ms: int) -> None:
        """One region's books balance, agree with its journal, and move nothing twice."""
        self.checked["books_balance"] += 1
        for problem in self.region_books[code].check():
            self.fail("books_balance", f"region {code}: {problem}", "", now_ms)
        self.checked["exactly_once"] += 1
        sql = self.region_sql[code]
        for tid, phase, n in views.repeated_journal_entries(sql):
            self.fail("exactly_once", f"region {code} journaled {phase} {n} times", tid, now_ms)
        for tid in views.both_outcomes_journaled(sql):
            self.fail("exactly_once", f"region {code} both posted and voided", tid, now_ms)

    def _no_negative(self, code: str, now_ms: int) -> None:
        self.checked["no_negative_balance"] += 1
        for account, *totals in views.negative_accounts(self.region_sql[code]):
            self.fail("no_negative_balance", f"region {code} {account}: {totals}", "", now_ms)

    def _opening(self, opening: int, now_ms: int) -> None:
        if opening != self.expected_opening_fen:
            detail = (
                f"opening balances sum to {opening} fen, the population put in "
                f"{self.expected_opening_fen}"
            )
            self.fail("conservation", detail, "", now_ms)

    # --- at the end ---

    def final(
        self,
        now_ms: int,
        first_outcomes: Mapping[str, BillOutcome],
        conflicts: Sequence[tuple[BillOutcome, BillOutcome]],
    ) -> None:
        """Everything, in bulk, once the network is quiet (or the liveness limit passed)."""
        ch = views.all_transfers(self.ch)
        holds = {code: views.all_holds(sql) for code, sql in self.region_sql.items()}
        credits = {code: views.all_credits(sql) for code, sql in self.region_sql.items()}
        bills = {code: views.all_bills(sql) for code, sql in self.region_sql.items()}
        for tid, request in self.requests.items():
            t = ch.get(tid)
            self.checked["liveness"] += 1
            self.checked["agreement"] += 1
            _final_transfer(
                self.reporter("liveness", tid, now_ms),
                self.reporter("agreement", tid, now_ms),
                request,
                first_outcomes.get(tid),
                bills[request.region].get(tid),
                t,
                holds.get(t.payer_region, {}).get(tid) if t is not None else None,
                credits.get(t.payee_region, {}).get(tid) if t is not None else None,
            )
        self._orphans(ch, holds, credits, now_ms)
        self.checked["exactly_once"] += 1
        for first, other in conflicts:
            detail = (
                f"the submitter was told {first.outcome} ({first.paid_fen}) and later "
                f"{other.outcome} ({other.paid_fen})"
            )
            self.fail("exactly_once", detail, first.transfer_id, now_ms)
        self._money(now_ms, first_outcomes)
        self.settlement(now_ms)
        self._clearing(ch, now_ms)
        for code in self.region_sql:
            self.books(code, now_ms)
            self._no_negative(code, now_ms)

    def _orphans(
        self,
        ch: Mapping[str, views.TransferRow],
        holds: Mapping[str, Mapping[str, views.HoldRow]],
        credits: Mapping[str, Mapping[str, views.CreditRow]],
        now_ms: int,
    ) -> None:
        """Money moved anywhere belongs to a transfer committed there, and every hold ends."""
        self.checked["agreement"] += 1
        self.checked["liveness"] += 1
        for code, holds_here in holds.items():
            for tid, hold in holds_here.items():
                t = ch.get(tid)
                if hold.state == PENDING:
                    detail = f"hold of {hold.held_fen} still pending at {code}"
                    self.fail("liveness", detail, tid, now_ms)
                elif hold.state == POSTED and (
                    t is None or t.state != CH_COMMITTED or t.payer_region != code
                ):
                    state = "nothing" if t is None else f"{t.state} from {t.payer_region}"
                    detail = f"region {code} posted {hold.held_fen}; the clearinghouse has {state}"
                    self.fail("agreement", detail, tid, now_ms)
        for code, credits_here in credits.items():
            for tid, credit in credits_here.items():
                t = ch.get(tid)
                if t is None or t.state != CH_COMMITTED or t.payee_region != code:
                    state = "nothing" if t is None else f"{t.state} for {t.payee_region}"
                    detail = (
                        f"region {code} credited {credit.amount_fen}; the clearinghouse has {state}"
                    )
                    self.fail("agreement", detail, tid, now_ms)

    def _money(self, now_ms: int, first_outcomes: Mapping[str, BillOutcome]) -> None:
        """The books conserve money, and agree with what the submitters were told."""
        self.checked["conservation"] += 1
        self.checked["books_balance"] += 1
        audit = audit_books(self.region_books)
        for problem in audit.problems:
            kind = "books_balance" if problem.startswith("region ") else "conservation"
            self.fail(kind, problem, "", now_ms)
        self._opening(audit.opening_fen, now_ms)
        told: dict[str, int] = defaultdict(int)
        for tid, o in first_outcomes.items():
            flow = self.requests[tid].flow if tid in self.requests else Flow.COPAY
            if flow == Flow.COPAY:
                told["bills paid"] += o.paid_fen + o.own_paid_fen + o.wallet_paid_fen
                told["wallets"] -= o.wallet_paid_fen
            elif o.reason is None:  # a wallet transfer or a premium payment went through
                told["premiums paid" if flow == Flow.PREMIUM else "wallets"] += o.paid_fen
        books = {
            "bills paid": audit.bills_paid_fen,
            "premiums paid": audit.premiums_paid_fen,
            "wallets": audit.wallets_fen,
        }
        for what, amount in books.items():
            if told[what] != amount:
                detail = (
                    f"the submitters were told {told[what]} fen in {what}, the books say {amount}"
                )
                self.fail("conservation", detail, "", now_ms)
        self.checked["bilateral_positions"] += 1
        positions = {code: views.positions(sql) for code, sql in self.region_sql.items()}
        pairs = {tuple(sorted((a, b))) for a, towards in positions.items() for b in towards}
        for a, b in sorted(pairs):
            ab = positions.get(a, {}).get(b, 0)
            ba = positions.get(b, {}).get(a, 0)
            # What a owes b and what b is owed by a cancel out; a region's position towards
            # itself (payer and payee in one region) nets to zero on its own.
            if (ab if a == b else ab + ba) != 0:
                detail = f"{a} holds {ab} towards {b}, {b} holds {ba} towards {a}"
                self.fail("bilateral_positions", detail, "", now_ms)

    def settlement(self, now_ms: int) -> None:
        """Every closed window settled between the regional funds, and booked by each
        region as issued (``gongji.settlement_audit``, the audit's own check)."""
        self.checked["settlement"] += 1
        ch = read_clearinghouse_settlement(self.ch)
        regions = {code: read_region_settlement(code, sql) for code, sql in self.region_sql.items()}
        for p in check_settlement(ch, regions):
            where = f"window {p.window}: " if p.window else ""
            self.fail("settlement", f"region {p.region or '-'}: {where}{p.detail}", "", now_ms)

    def _clearing(self, ch: Mapping[str, views.TransferRow], now_ms: int) -> None:
        """Every committed cross-region transfer cleared once, as committed; reconciled."""
        self.checked["clearing"] += 1
        entries = views.clearing_entries(self.ch)
        for tid, t in ch.items():
            entry = entries.get(tid)
            crosses = t.state == CH_COMMITTED and t.payer_region != t.payee_region
            if crosses and entry is None:
                detail = f"committed {t.posted_fen} from {t.payer_region} but never cleared"
                self.fail("clearing", detail, tid, now_ms)
            elif entry is not None and (
                not crosses
                or (entry.payer_region, entry.payee_region, entry.amount_fen)
                != (t.payer_region, t.payee_region, t.posted_fen)
            ):
                detail = f"cleared {entry}; the clearinghouse has {t.state} {t.posted_fen}"
                self.fail("clearing", detail, tid, now_ms)
        for tid in sorted(entries.keys() - ch.keys()):
            self.fail("clearing", "cleared a transfer the clearinghouse does not know", tid, now_ms)
        self.checked["reconciliation"] += 1
        for window, region, tid, kind, mine, reported, state in views.disagreements(self.ch):
            detail = (
                f"{kind}: region {region} has {mine} fen, window {window} says {reported} ({state})"
            )
            self.fail("reconciliation", detail, tid, now_ms)
        self.checked["liveness"] += 1
        done = views.reconciled(self.ch)
        for window in views.closed_windows(self.ch):
            for code in self.region_sql:
                if (window, code) not in done:
                    detail = f"region {code} never reconciled window {window}"
                    self.fail("liveness", detail, "", now_ms)


def _agree(
    bad: Report,
    t: views.TransferRow | None,
    hold: views.HoldRow | None,
    credit: views.CreditRow | None,
    payer: str,
    payee: str,
) -> None:
    """Payer, payee and clearinghouse tell one story (true at every instant)."""
    posted = hold is not None and hold.state == POSTED
    if hold is not None and posted and t is not None:
        if t.state not in (COMMITTING, CREDITING, CH_COMMITTED):
            bad(f"payer {payer} posted {hold.held_fen} but the clearinghouse is {t.state}")
        elif t.held_fen != hold.held_fen:
            bad(f"payer {payer} posted {hold.held_fen}; the clearinghouse reserved {t.held_fen}")
    if credit is not None:
        if hold is None or not posted or hold.held_fen != credit.amount_fen:
            seen = "no posted hold" if hold is None else f"hold {hold.state} {hold.held_fen}"
            bad(f"payee {payee} credited {credit.amount_fen} with {seen} at payer {payer or '?'}")
        elif credit.payer_region != payer:
            bad(f"payee {payee} credited from {credit.payer_region}; payer chosen: {payer}")
    if t is None:
        return
    if t.payer_posted and not posted:
        bad(f"the clearinghouse records a post at {payer} that the payer does not have")
    if t.state == CH_COMMITTED and (credit is None or credit.amount_fen != t.posted_fen):
        bad(f"committed {t.posted_fen} at the clearinghouse; payee {payee} has {credit}")
    if t.state in ABORT_STATES and credit is not None:
        bad(f"aborted at the clearinghouse; payee {payee} credited {credit.amount_fen}")


def _settled(
    bad: Report,
    where: str,
    bill: views.BillRow,
    t: views.TransferRow | None,
    credit: views.CreditRow | None,
) -> None:
    """A request's final outcome at its region agrees with where the money is."""
    if bill.reason is None and bill.paid_fen > 0:
        if t is None or not t.payer_posted or t.posted_fen != bill.paid_fen:
            state = "nothing" if t is None else f"{t.state}, posted {t.posted_fen}"
            bad(f"region {where} settled {bill.paid_fen} paid; the clearinghouse has {state}")
        if credit is None or credit.amount_fen != bill.paid_fen:
            bad(f"region {where} settled {bill.paid_fen} paid; the payee's credit is {credit}")
    elif bill.reason is None:
        if credit is not None:  # paid locally (own account, wallet): nothing crossed
            bad(
                f"region {where} settled it as paid locally; a credit of {credit.amount_fen} exists"
            )
    else:
        if credit is not None:
            bad(
                f"region {where} refused it ({bill.reason}); a credit of {credit.amount_fen} exists"
            )
        if t is not None and (t.state not in ABORT_STATES or t.reason != bill.reason):
            bad(
                f"region {where} refused it ({bill.reason}); "
                f"the clearinghouse is {t.state} ({t.reason})"
            )


def _final_transfer(
    late: Report,
    bad: Report,
    request: Request,
    first: BillOutcome | None,
    bill: views.BillRow | None,
    t: views.TransferRow | None,
    hold: views.HoldRow | None,
    credit: views.CreditRow | None,
) -> None:
    """Once quiet: every party reached the one final outcome, and they agree on it."""
    where = request.region
    if first is None:
        late("the submitter never got an outcome")
    settled = bill is not None and bill.state == SETTLED
    if bill is None or not settled:
        late(f"region {where} has no final outcome ({'no record' if bill is None else bill.state})")
    if first is not None and bill is not None and settled:
        told = (
            None if first.reason is None else first.reason.value,
            first.paid_fen,
            first.payer_region,
        )
        if told != (bill.reason, bill.paid_fen, bill.payer_region):
            bad(
                f"the submitter was told {told}; "
                f"region {where} recorded {_name(bill.reason)} ({bill.paid_fen})"
            )
    if t is None:
        # Refused or paid locally by the region itself: the clearinghouse never heard of it.
        if bill is not None and settled and bill.paid_fen != 0:
            bad(
                f"region {where} says a co-payer paid {bill.paid_fen}; "
                "the clearinghouse never heard of it"
            )
        return
    if t.state not in FINAL_STATES:
        late(f"the clearinghouse left it {t.state}")
    payer, payee = t.payer_region, t.payee_region
    if t.state == CH_COMMITTED:
        if hold is None or hold.state != POSTED or hold.held_fen != t.posted_fen:
            bad(f"committed {t.posted_fen} at the clearinghouse; payer {payer} has {hold}")
        if credit is None or (credit.amount_fen, credit.payer_region) != (t.posted_fen, payer):
            bad(f"committed {t.posted_fen} from {payer}; payee {payee} has {credit}")
        if (
            bill is not None
            and settled
            and (bill.reason, bill.paid_fen, bill.payer_region) != (None, t.posted_fen, payer)
        ):
            bad(f"committed {t.posted_fen} from {payer}; region {where} settled {bill}")
    elif t.state == ABORTED:
        if hold is not None and hold.state == POSTED:
            bad(f"aborted ({t.reason}) at the clearinghouse; payer {payer} posted {hold.held_fen}")
        if credit is not None:
            bad(
                f"aborted ({t.reason}) at the clearinghouse; "
                f"payee {payee} credited {credit.amount_fen}"
            )
        if bill is not None and settled and bill.reason != t.reason:
            bad(
                f"aborted ({t.reason}) at the clearinghouse; "
                f"region {where} settled {_name(bill.reason)}"
            )
