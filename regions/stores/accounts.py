"""The names of a region's ledger accounts (see ``regions.books``), and the fixed ones."""

from __future__ import annotations

from regions.books import Books

OPENING_FUND = "fund:opening"
BILLS_PAID = "bills:paid"
PREMIUMS_PAID = "premiums:paid"
SETTLEMENT_ADVANCE = "settlement:advance"
"""This region's advance (预付金) at the clearinghouse: a debit balance (debits less
credits) equal to the advance the clearinghouse holds for it after its last booked close."""
SETTLEMENT_FUND = "settlement:fund"
"""The region's fund as settlement touches it: its posted balance is what the fund has
paid into its advance, less what it took back (the sum of its settlements' top-ups)."""


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
