"""Check the invariants over every region's books: balanced books, conserved money.

Money enters at enrolment (opening balances) and is then only ever in a personal account,
a wallet, a paid bill or a paid premium, or between two regions (at quiescence, nowhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from regions.books import Books
from regions.store import BILLS_PAID, OPENING_FUND, PREMIUMS_PAID


@dataclass(slots=True)
class AuditReport:
    """What the books of all regions say, summed, and what is wrong with them."""

    books_balanced: bool = True
    conserved: bool = True
    opening_fen: int = 0
    """Money put into personal accounts at enrolment (the total to conserve)."""
    accounts_fen: int = 0
    """Posted balances of personal accounts now (held amounts still count)."""
    wallets_fen: int = 0
    """Balances of medical-insurance wallets."""
    bills_paid_fen: int = 0
    """Money paid towards bills."""
    premiums_paid_fen: int = 0
    """Money paid towards resident premiums."""
    interregion_net_fen: int = 0
    """Sum of all inter-region positions and settlement accounts (settlement moves a
    window's positions into the advances, and top-ups between fund and advance): zero
    when nothing is between regions."""
    held_fen: int = 0
    """Amounts still reserved (pending)."""
    problems: list[str] = field(default_factory=list)


def audit_books(books_by_region: Mapping[str, Books]) -> AuditReport:
    """Balanced books per region; money conserved across regions (at quiescence)."""
    report = AuditReport()
    for code, books in sorted(books_by_region.items()):
        problems = books.check()
        if problems:
            report.books_balanced = False
            report.problems += [f"region {code}: {p}" for p in problems]
        report.opening_fen -= books.sum_posted_balance(OPENING_FUND)
        report.accounts_fen += books.sum_posted_balance("psn:")
        report.wallets_fen += books.sum_posted_balance("wallet:")
        report.bills_paid_fen += books.sum_posted_balance(BILLS_PAID)
        report.premiums_paid_fen += books.sum_posted_balance(PREMIUMS_PAID)
        report.interregion_net_fen += books.sum_posted_balance("interregion:")
        report.interregion_net_fen += books.sum_posted_balance("settlement:")
        report.held_fen += sum(t.debits_pending for t in books.all_totals())
    held = report.accounts_fen + report.wallets_fen
    spent = report.bills_paid_fen + report.premiums_paid_fen
    if report.opening_fen != held + spent:
        report.conserved = False
        report.problems.append(
            f"opening {report.opening_fen} != accounts {report.accounts_fen}"
            f" + wallets {report.wallets_fen} + bills paid {report.bills_paid_fen}"
            f" + premiums paid {report.premiums_paid_fen}"
        )
    if report.interregion_net_fen != 0:
        report.conserved = False
        report.problems.append(f"inter-region positions sum to {report.interregion_net_fen}")
    return report
