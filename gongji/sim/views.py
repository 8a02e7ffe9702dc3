"""Read-only views of the stores that the invariant checker needs, in few queries.

The checker reads the same SQLite files the cores write, between steps (never inside a
transaction). Bulk reads go straight to the tables, selecting named columns only; they
are kept here, in one place, so a schema change touches one module.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from clearinghouse.store import TransferState
from regions.store import BillState, HoldState

POSTED = HoldState.POSTED.value
PENDING = HoldState.PENDING.value
SETTLED = BillState.SETTLED.value
COMMITTING = TransferState.COMMITTING.value
CREDITING = TransferState.CREDITING.value
COMMITTED = TransferState.COMMITTED.value
ABORTING = TransferState.ABORTING.value
ABORTED = TransferState.ABORTED.value
FINAL_STATES = (COMMITTED, ABORTED)
POSTED_STATES = (CREDITING, COMMITTED)
"""The clearinghouse heard the payer post its hold."""
ABORT_STATES = (ABORTING, ABORTED)
"""The clearinghouse decided to abort (the release of a hold may still be awaited)."""


@dataclass(frozen=True, slots=True)
class HoldRow:
    state: str
    held_fen: int
    payer: str | None


@dataclass(frozen=True, slots=True)
class CreditRow:
    amount_fen: int
    payer_region: str


@dataclass(frozen=True, slots=True)
class BillRow:
    state: str
    reason: str | None
    paid_fen: int
    payer_region: str


@dataclass(frozen=True, slots=True)
class TransferRow:
    state: str
    payee_region: str
    payer_region: str
    held_fen: int
    posted_fen: int
    reason: str | None

    @property
    def payer_posted(self) -> bool:
        return self.state in POSTED_STATES

    @property
    def abort_pending(self) -> bool:
        return self.state == ABORTING


_HOLD = "SELECT state, held_fen, payer FROM holds"
_CREDIT = "SELECT amount_fen, payer_region FROM credits"
_BILL = "SELECT state, reason, paid_fen, payer_region FROM bills"
_TRANSFER = "SELECT state, payee_region, payer_region, held_fen, posted_fen, reason FROM transfers"


def hold(sql: sqlite3.Connection, transfer_id: str) -> HoldRow | None:
    row = sql.execute(_HOLD + " WHERE transfer_id = ?", (transfer_id,)).fetchone()
    return None if row is None else HoldRow(*row)


def credit(sql: sqlite3.Connection, transfer_id: str) -> CreditRow | None:
    row = sql.execute(_CREDIT + " WHERE transfer_id = ?", (transfer_id,)).fetchone()
    return None if row is None else CreditRow(*row)


def bill(sql: sqlite3.Connection, transfer_id: str) -> BillRow | None:
    row = sql.execute(_BILL + " WHERE transfer_id = ?", (transfer_id,)).fetchone()
    return None if row is None else BillRow(*row)


def transfer(sql: sqlite3.Connection, transfer_id: str) -> TransferRow | None:
    row = sql.execute(_TRANSFER + " WHERE transfer_id = ?", (transfer_id,)).fetchone()
    return None if row is None else _transfer_row(row)


def _transfer_row(row: tuple[object, ...]) -> TransferRow:
    state, payee, payer, held, posted, reason = row
    return TransferRow(
        str(state),
        str(payee),
        str(payer),
        int(str(held)),
        int(str(posted)),
        None if reason is None else str(reason),
    )


# --- bulk reads ---


def all_holds(sql: sqlite3.Connection) -> dict[str, HoldRow]:
    rows = sql.execute("SELECT transfer_id, state, held_fen, payer FROM holds")
    return {str(r[0]): HoldRow(r[1], r[2], r[3]) for r in rows}


def all_credits(sql: sqlite3.Connection) -> dict[str, CreditRow]:
    rows = sql.execute("SELECT transfer_id, amount_fen, payer_region FROM credits")
    return {str(r[0]): CreditRow(r[1], r[2]) for r in rows}


def all_bills(sql: sqlite3.Connection) -> dict[str, BillRow]:
    rows = sql.execute("SELECT transfer_id, state, reason, paid_fen, payer_region FROM bills")
    return {str(r[0]): BillRow(r[1], r[2], r[3], r[4]) for r in rows}


def all_transfers(sql: sqlite3.Connection) -> dict[str, TransferRow]:
    rows = sql.execute(
        "SELECT transfer_id, state, payee_region, payer_region, held_fen, posted_fen, reason"
        " FROM transfers"
    )
    return {str(r[0]): _transfer_row(r[1:]) for r in rows}


def repeated_journal_entries(sql: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(transfer id, phase, count) for every phase a transfer has more than once."""
    rows = sql.execute(
        "SELECT transfer_id, phase, COUNT(*) FROM journal GROUP BY transfer_id, phase"
        " HAVING COUNT(*) > 1 ORDER BY transfer_id, phase"
    )
    return [(str(t), str(p), int(n)) for t, p, n in rows]


def both_outcomes_journaled(sql: sqlite3.Connection) -> list[str]:
    """Transfers whose hold was both posted and voided in one region's books."""
    rows = sql.execute(
        "SELECT transfer_id FROM journal WHERE phase IN ('post', 'void')"
        " GROUP BY transfer_id HAVING COUNT(DISTINCT phase) > 1 ORDER BY transfer_id"
    )
    return [str(r[0]) for r in rows]


# --- aggregates (one scan each, in SQLite) ---


def posted_holds_fen(sql: sqlite3.Connection) -> int:
    row = sql.execute(
        "SELECT COALESCE(SUM(held_fen), 0) FROM holds WHERE state = ?", (POSTED,)
    ).fetchone()
    return int(row[0])


def credits_fen(sql: sqlite3.Connection) -> int:
    return int(sql.execute("SELECT COALESCE(SUM(amount_fen), 0) FROM credits").fetchone()[0])


def pending_holds(sql: sqlite3.Connection) -> int:
    row = sql.execute("SELECT COUNT(*) FROM holds WHERE state = ?", (PENDING,)).fetchone()
    return int(row[0])


def unfinished_transfers(sql: sqlite3.Connection) -> int:
    row = sql.execute(
        "SELECT COUNT(*) FROM transfers WHERE state NOT IN (?, ?)",
        FINAL_STATES,
    ).fetchone()
    return int(row[0])


def negative_accounts(sql: sqlite3.Connection) -> list[tuple[str, int, int, int, int, bool]]:
    """Ledger accounts with a negative total, or a no-overdraft one below zero."""
    rows = sql.execute(
        "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted,"
        " no_overdraft FROM ledger_accounts WHERE debits_pending < 0 OR debits_posted < 0"
        " OR credits_pending < 0 OR credits_posted < 0"
        " OR (no_overdraft = 1 AND credits_posted - debits_posted - debits_pending < 0)"
    )
    return [(str(r[0]), r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


def positions(sql: sqlite3.Connection) -> dict[str, int]:
    """This region's posted position towards each other region (``interregion:<code>``)."""
    rows = sql.execute(
        "SELECT substr(id, 13), credits_posted - debits_posted FROM ledger_accounts"
        " WHERE id >= 'interregion:' AND id < 'interregion;'"
    )
    return {str(code): int(balance) for code, balance in rows}


# --- clearing (clearinghouse side) ---


@dataclass(frozen=True, slots=True)
class EntryRow:
    window: int
    payer_region: str
    payee_region: str
    amount_fen: int


def clearing_entries(sql: sqlite3.Connection) -> dict[str, EntryRow]:
    rows = sql.execute(
        "SELECT transfer_id, window, payer_region, payee_region, amount_fen FROM clearing_entries"
    )
    return {str(r[0]): EntryRow(r[1], r[2], r[3], r[4]) for r in rows}


def disagreements(sql: sqlite3.Connection) -> list[tuple[int, str, str, str, int, int, str]]:
    """(window, region, transfer id, kind, region fen, report fen, state), every one."""
    rows = sql.execute(
        "SELECT window, region, transfer_id, kind, region_fen, report_fen, state"
        " FROM disagreements ORDER BY window, region, transfer_id"
    )
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def closed_windows(sql: sqlite3.Connection) -> list[int]:
    rows = sql.execute("SELECT window FROM windows WHERE state = 'closed' ORDER BY window")
    return [int(r[0]) for r in rows]


def reconciled(sql: sqlite3.Connection) -> set[tuple[int, str]]:
    """(window, region) pairs whose reconciliation verdict reached the clearinghouse."""
    return {(int(w), str(r)) for w, r in sql.execute("SELECT window, region FROM reconciliations")}


def unreconciled_count(sql: sqlite3.Connection, regions: int) -> int:
    """Verdicts still missing: every registered region checks every closed window."""
    closed = sql.execute("SELECT COUNT(*) FROM windows WHERE state = 'closed'").fetchone()[0]
    done = sql.execute(
        "SELECT COUNT(*) FROM reconciliations r JOIN windows w ON w.window = r.window"
        " WHERE w.state = 'closed'"
    ).fetchone()[0]
    return int(closed) * regions - int(done)


def unbooked_settlements(sql: sqlite3.Connection) -> int:
    """Settlements issued at a close that their region has not yet said it booked."""
    return int(sql.execute("SELECT COUNT(*) FROM settlements WHERE state = 'issued'").fetchone()[0])
