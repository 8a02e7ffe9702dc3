"""The names of a region's ledger accounts (see ``regions.books``), and the fixed ones."""

from __future__ import annotations

from regions.books import Books

OPENING_FUND = "fund:opening"
BILLS_PAID = "bills:paid"
PREMIUMS_PAID = "premiums:paid"


def person_account(psn_no: str) -> str:
    return f"psn:{psn_no}"


def interregion_account(region: str) -> str:
    return f"interregion:{region}"


def wallet_account(psn_no: str) -> str:
    return f"wallet:{psn_no}"


def open_fixed_accounts(books: Books) -> None:
    """The accounts every region has from its first start (idempotent)."""
    with books.db.transaction():
        books.open_account(OPENING_FUND, no_overdraft=False)
        books.open_account(BILLS_PAID, no_overdraft=False)
        books.open_account(PREMIUMS_PAID, no_overdraft=False)
