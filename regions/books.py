"""A region's double-entry books, in TigerBeetle's terms.

Every movement is a transfer between two ledger accounts of the region: it debits one
and credits the other by the same amount, so the books balance by construction. A
two-phase transfer is first *pending* (the amount is reserved on both accounts), then
*posted* or *voided*. Each account keeps four running totals; the journal keeps every
step, so the totals can be recomputed and checked (``check``).

Ledger accounts of a region:

- ``psn:<psn_no>``: an employee's personal account (may not go below zero);
- ``wallet:<psn_no>``: a person's medical-insurance wallet (may not go below zero);
- ``fund:opening``: where opening balances come from (the region's fund);
- ``interregion:<code>``: what this region owes (credit) or is owed by (debit) region ``code``;
- ``bills:paid``: money paid towards bills of this region's insured;
- ``settlement:advance``, ``settlement:fund``: settlement between regional funds at the
  close of a window (``regions.settling``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from storage.cache import MISS, RowCache
from storage.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_accounts (
    id TEXT PRIMARY KEY,
    no_overdraft INTEGER NOT NULL,
    debits_pending INTEGER NOT NULL DEFAULT 0,
    debits_posted INTEGER NOT NULL DEFAULT 0,
    credits_pending INTEGER NOT NULL DEFAULT 0,
    credits_posted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('posted', 'pending', 'post', 'void')),
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_transfer ON journal (transfer_id);
"""


class Overdraft(Exception):
    """A debit would take an account that may not go negative below zero."""


@dataclass(frozen=True, slots=True)
class AccountTotals:
    """The four running totals of one ledger account."""

    id: str
    no_overdraft: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def available(self) -> int:
        """What may still be debited: posted credits less posted and pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def posted_balance(self) -> int:
        """Posted credits less posted debits (pending amounts still count as owned)."""
        return self.credits_posted - self.debits_posted


class Books:
    """The double-entry ledger of one region, stored in that region's SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        # Write-through (storage.cache): every step reads the totals of the accounts it moves.
        self._totals: RowCache[str, AccountTotals] = db.row_cache("ledger_accounts")

    @property
    def _sql(self) -> sqlite3.Connection:
        return self.db.connection

    def open_account(self, account: str, *, no_overdraft: bool) -> None:
        """Create the account if it does not exist (idempotent)."""
        known = self._totals.get(account)
        if known is not MISS and known is not None:
            return
        self._sql.execute(
            "INSERT OR IGNORE INTO ledger_accounts (id, no_overdraft) VALUES (?, ?)",
            (account, int(no_overdraft)),
        )
        self._totals.forget(account)

    def totals(self, account: str) -> AccountTotals | None:
        cached = self._totals.get(account)
        if cached is not MISS:
            return cached
        row = self._sql.execute(
            "SELECT id, no_overdraft, debits_pending, debits_posted, credits_pending,"
            " credits_posted FROM ledger_accounts WHERE id = ?",
            (account,),
        ).fetchone()
        totals = (
            None
            if row is None
            else AccountTotals(row[0], bool(row[1]), row[2], row[3], row[4], row[5])
        )
        self._totals.put(account, totals)
        return totals

    def _moved(
        self,
        account: str,
        debits_pending: int = 0,
        debits_posted: int = 0,
        credits_pending: int = 0,
        credits_posted: int = 0,
    ) -> None:
        """Keep a cached account's totals equal to what the UPDATE just wrote."""
        t = self._totals.get(account)
        if t is MISS or t is None:
            return
        self._totals.put(
            account,
            AccountTotals(
                t.id,
                t.no_overdraft,
                t.debits_pending + debits_pending,
                t.debits_posted + debits_posted,
                t.credits_pending + credits_pending,
                t.credits_posted + credits_posted,
            ),
        )

    def available(self, account: str) -> int:
        totals = self.totals(account)
        return 0 if totals is None else totals.available

    def _require_funds(self, account: str, amount: int) -> None:
        totals = self.totals(account)
        if totals is None:
            raise KeyError(f"no ledger account {account!r}")
        if totals.no_overdraft and totals.available < amount:
            raise Overdraft(f"{account}: available {totals.available} < {amount}")

    def _journal(
        self, transfer_id: str, phase: str, debit: str, credit: str, amount: int, at_ms: int
    ) -> None:
        self._sql.execute(
            "INSERT INTO journal (transfer_id, phase, debit_account, credit_account,"
            " amount_fen, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (transfer_id, phase, debit, credit, amount, at_ms),
        )

    def _add(self, account: str, column: str, amount: int) -> None:
        # column comes from this module only, never from input.
        self._sql.execute(
            f"UPDATE ledger_accounts SET {column} = {column} + ? WHERE id = ?", (amount, account)
        )
        self._moved(account, **{column: amount})

    def transfer(self, transfer_id: str, debit: str, credit: str, amount: int, at_ms: int) -> None:
        """A single-phase (immediately posted) transfer."""
        self._check_amount(amount)
        self._require_funds(debit, amount)
        self._add(debit, "debits_posted", amount)
        self._add(credit, "credits_posted", amount)
        self._journal(transfer_id, "posted", debit, credit, amount, at_ms)

    def reserve(self, transfer_id: str, debit: str, credit: str, amount: int, at_ms: int) -> None:
        """Phase one: reserve ``amount`` as pending on both accounts."""
        self._check_amount(amount)
        self._require_funds(debit, amount)
        self._add(debit, "debits_pending", amount)
        self._add(credit, "credits_pending", amount)
        self._journal(transfer_id, "pending", debit, credit, amount, at_ms)

    def post(self, transfer_id: str, debit: str, credit: str, amount: int, at_ms: int) -> None:
        """Phase two: the pending amount becomes posted (one UPDATE per account)."""
        self._sql.execute(
            "UPDATE ledger_accounts SET debits_pending = debits_pending - ?,"
            " debits_posted = debits_posted + ? WHERE id = ?",
            (amount, amount, debit),
        )
        self._moved(debit, debits_pending=-amount, debits_posted=amount)
        self._sql.execute(
            "UPDATE ledger_accounts SET credits_pending = credits_pending - ?,"
            " credits_posted = credits_posted + ? WHERE id = ?",
            (amount, amount, credit),
        )
        self._moved(credit, credits_pending=-amount, credits_posted=amount)
        self._journal(transfer_id, "post", debit, credit, amount, at_ms)

    def void(self, transfer_id: str, debit: str, credit: str, amount: int, at_ms: int) -> None:
        """Phase two: the pending amount is released."""
        self._add(debit, "debits_pending", -amount)
        self._add(credit, "credits_pending", -amount)
        self._journal(transfer_id, "void", debit, credit, amount, at_ms)

    @staticmethod
    def _check_amount(amount: int) -> None:
        if type(amount) is not int or amount <= 0:
            raise ValueError(f"a transfer amount is a positive integer of fen, not {amount!r}")

    def all_totals(self) -> list[AccountTotals]:
        rows = self._sql.execute(
            "SELECT id, no_overdraft, debits_pending, debits_posted, credits_pending,"
            " credits_posted FROM ledger_accounts ORDER BY id"
        ).fetchall()
        return [AccountTotals(r[0], bool(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def sum_posted_balance(self, prefix: str) -> int:
        """Sum of posted balances over accounts whose id starts with ``prefix``."""
        row = self._sql.execute(
            "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM ledger_accounts"
            " WHERE id >= ? AND id < ?",
            (prefix, prefix + "\uffff"),
        ).fetchone()
        return int(row[0])

    def check(self) -> list[str]:
        """Problems with the books; an empty list means they balance.

        Checks that debits equal credits (posted and pending), that every account's
        totals equal what its journal says, and that no no-overdraft account is negative.
        """
        problems: list[str] = []
        accounts = {t.id: t for t in self.all_totals()}
        debits_posted = sum(t.debits_posted for t in accounts.values())
        credits_posted = sum(t.credits_posted for t in accounts.values())
        if debits_posted != credits_posted:
            problems.append(f"posted debits {debits_posted} != posted credits {credits_posted}")
        debits_pending = sum(t.debits_pending for t in accounts.values())
        credits_pending = sum(t.credits_pending for t in accounts.values())
        if debits_pending != credits_pending:
            problems.append(f"pending debits {debits_pending} != pending credits {credits_pending}")
        recomputed: dict[str, list[int]] = {}
        for phase, debit, credit, amount in self._sql.execute(
            "SELECT phase, debit_account, credit_account, amount_fen FROM journal"
        ):
            for account, side in ((debit, 0), (credit, 2)):
                totals = recomputed.setdefault(account, [0, 0, 0, 0])
                # [debits_pending, debits_posted, credits_pending, credits_posted]
                if phase == "posted":
                    totals[side + 1] += amount
                elif phase == "pending":
                    totals[side] += amount
                elif phase == "post":
                    totals[side] -= amount
                    totals[side + 1] += amount
                else:  # void
                    totals[side] -= amount
        for account, t in accounts.items():
            expected = recomputed.get(account, [0, 0, 0, 0])
            actual = [t.debits_pending, t.debits_posted, t.credits_pending, t.credits_posted]
            if expected != actual:
                problems.append(f"{account}: totals {actual} but journal says {expected}")
            if any(value < 0 for value in actual):
                problems.append(f"{account}: negative total {actual}")
            if t.no_overdraft and t.available < 0:
                problems.append(f"{account}: negative available balance {t.available}")
        for account in recomputed.keys() - accounts.keys():
            problems.append(f"{account}: in the journal but not an account")
        return problems
