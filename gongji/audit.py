"""Check the invariants over every region's books: balanced books, conserved money."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from regions.books import Books
from regions.store import BILLS_PAID, OPENING_FUND


@dataclass(slots=True)
class AuditReport:
    """What the books of all regions say, summed, and what is wrong with them."""

    books_balanced: bool = True
    conserved: bool = True
    opening_fen: int = 0
    """Money put into personal accounts at enrolment (the total to conserve)."""
    accounts_fen: int = 0
    """Posted balances of personal accounts now (held amounts still count)."""
    bills_paid_fen: int = 0
    """Money paid towards bills."""
    interregion_net_fen: int = 0
    """Sum of all inter-region positions: zero when nothing is between regions."""
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
        report.bills_paid_fen += books.sum_posted_balance(BILLS_PAID)
        report.interregion_net_fen += books.sum_posted_balance("interregion:")
        report.held_fen += sum(t.debits_pending for t in books.all_totals())
    if report.opening_fen != report.accounts_fen + report.bills_paid_fen:
        report.conserved = False
        report.problems.append(
            f"opening {report.opening_fen} != accounts {report.accounts_fen}"
            f" + bills paid {report.bills_paid_fen}"
        )
    if report.interregion_net_fen != 0:
        report.conserved = False
        report.problems.append(f"inter-region positions sum to {report.interregion_net_fen}")
    return report
