"""What a cluster's SQLite files say, read read-only with plain SQL, for the ledger audit.

The schema is the contract: the tables and columns the services write (``regions/store.py``,
``regions/books.py``, ``clearinghouse/store.py``) are read here without those classes, so a
bug in them cannot also hide itself from the audit. Every file is opened with
``mode=ro`` (never a write lock, never a schema change, safe beside a running service's
WAL) and read in one read transaction, so each file is seen at one instant. A file with
no -wal or -shm beside it (its service stopped cleanly) is opened ``immutable=1``
instead, which leaves no trace; should a service start on it during the read, the worst
is a wrong or failed audit, never a change to the file.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gongji.settlement_audit import (
    ClearinghouseSettlement,
    RegionSettlement,
    read_clearinghouse_settlement,
    read_region_settlement,
)

CLEARINGHOUSE_FILE = "clearinghouse.sqlite"
REGION_FILE = re.compile(r"^region-(\d{6})\.sqlite$")
"""A region's file names its 6-digit code (see ``gongji.cluster.local``'s layout)."""

PERSON = "psn:"
WALLET = "wallet:"
INTERREGION = "interregion:"
OPENING_FUND = "fund:opening"
BILLS_PAID = "bills:paid"
PREMIUMS_PAID = "premiums:paid"
SETTLEMENT = "settlement:"
"""A region's settlement accounts: its advance and its fund (``gongji.settlement_audit``)."""


class SnapshotError(Exception):
    """The directory or a file in it is not what a gongji cluster writes; says which."""


@dataclass(frozen=True, slots=True)
class Totals:
    """The four running totals of a ledger account: debits and credits, pending and posted."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def posted_balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    def as_list(self) -> list[int]:
        return [self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    no_overdraft: bool
    totals: Totals


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal row that touches an inter-region account."""

    seq: int
    transfer_id: str
    phase: str
    debit: str
    credit: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class HoldRow:
    transfer_id: str
    payer: str | None
    payee_region: str | None
    held_fen: int
    state: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class CreditRow:
    transfer_id: str
    payer_region: str
    flow: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class BillRow:
    """A co-payment bill submitted at this region (its payee)."""

    transfer_id: str
    state: str
    paid_fen: int
    own_paid_fen: int
    wallet_paid_fen: int


@dataclass(slots=True)
class RegionSnapshot:
    """One region's file at one instant."""

    code: str
    path: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    journal_totals: dict[str, Totals] = field(default_factory=dict)
    """Each account's totals as recomputed from the journal alone."""
    journal_entries: int = 0
    opening_fen: int = 0
    """Money the journal moved out of ``fund:opening`` (opening balances at enrolment)."""
    repeated: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    """(transfer id, phase, debit, credit, times) of local entries journaled more than once."""
    interregion: list[Entry] = field(default_factory=list)
    """Journal rows touching an inter-region account, in journal order."""
    holds: dict[str, HoldRow] = field(default_factory=dict)
    credits: dict[str, CreditRow] = field(default_factory=dict)
    bills: dict[str, BillRow] = field(default_factory=dict)
    local_parts: dict[str, int] = field(default_factory=dict)
    """Journal amount per local part of a bill (``<transfer id>/own``, ``/wallet``)."""
    premiums_paid: dict[str, int] = field(default_factory=dict)
    """Paid premium records: transfer id -> amount."""
    premium_entries: dict[str, int] = field(default_factory=dict)
    """Journal amounts credited to ``premiums:paid``, by transfer id."""
    settlement: RegionSettlement | None = None
    """Its settlements between regional funds (``gongji.settlement_audit``)."""
    newest_ms: int = 0


@dataclass(frozen=True, slots=True)
class TransferRow:
    """The clearinghouse's record of one transfer."""

    transfer_id: str
    flow: str
    state: str
    payer_region: str
    payee_region: str
    held_fen: int
    posted_fen: int
    payer_posted: bool
    payee_credited: bool


@dataclass(frozen=True, slots=True)
class LegRow:
    """One payer leg of a bill at a region of care (``transfer_legs``): its region holds,
    posts and the region of care credits it under its ``leg_id``."""

    leg_id: str
    transfer_id: str
    source: str
    region: str
    state: str
    held_fen: int
    posted_fen: int


@dataclass(frozen=True, slots=True)
class ClearingRow:
    transfer_id: str
    payer_region: str
    payee_region: str
    amount_fen: int


@dataclass(slots=True)
class ClearinghouseSnapshot:
    transfers: dict[str, TransferRow] = field(default_factory=dict)
    legs: dict[str, LegRow] = field(default_factory=dict)
    """The legs of bills at a region of care, by leg id."""
    clearing: dict[str, ClearingRow] = field(default_factory=dict)
    settlement: ClearinghouseSettlement = field(default_factory=ClearinghouseSettlement)
    newest_ms: int = 0


@dataclass(frozen=True, slots=True)
class DataDir:
    """Where a cluster's files are: the clearinghouse's and each region's."""

    path: Path
    clearinghouse: Path
    regions: dict[str, Path]


def locate(data_dir: Path) -> DataDir:
    """The clearinghouse and region files of ``data_dir``, or ``SnapshotError``."""
    if not data_dir.is_dir():
        raise SnapshotError(f"no data directory {data_dir}")
    clearinghouse = data_dir / CLEARINGHOUSE_FILE
    if not clearinghouse.is_file():
        raise SnapshotError(f"no {CLEARINGHOUSE_FILE} in {data_dir}: not a cluster's data dir")
    try:
        names = sorted(data_dir.iterdir())
    except OSError as error:
        raise SnapshotError(f"cannot list {data_dir}: {error.strerror or error}") from None
    regions = {
        match.group(1): path
        for path in names
        if (match := REGION_FILE.match(path.name)) and path.is_file()
    }
    if not regions:
        raise SnapshotError(f"no region-<code>.sqlite in {data_dir}: not a cluster's data dir")
    return DataDir(data_dir, clearinghouse, regions)


def _uri(path: Path) -> str:
    """``mode=ro`` beside a WAL in use; ``immutable=1`` for a closed file (no -wal, no -shm).

    A read-only reader of a WAL database would otherwise create an empty -wal and -shm
    next to a stopped cluster's files and leave them there."""
    side_files = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    closed = not any(side.exists() for side in side_files)
    return f"{path.resolve().as_uri()}?{'immutable=1' if closed else 'mode=ro'}"


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection inside one read transaction (one instant of the file)."""
    try:
        db = sqlite3.connect(_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise SnapshotError(f"cannot open {path} read-only: {error}") from None
    try:
        db.execute("PRAGMA query_only = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("BEGIN")
        yield db
    except sqlite3.DatabaseError as error:
        raise SnapshotError(f"{path}: {error}") from None
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        db.close()


def read_only(path: Path) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    """A read-only connection to one of a cluster's files, in one read transaction (as the
    audit reads them; ``SnapshotError`` when it cannot be read)."""
    return _read_only(path)


def _newest(db: sqlite3.Connection, *queries: str) -> int:
    return max(int(db.execute(q).fetchone()[0] or 0) for q in queries)


_DECISION_OF = {"crediting": "committing", "aborting": "aborted"}


def read_clearinghouse(path: Path) -> ClearinghouseSnapshot:
    """The clearinghouse's transfers and clearing entries, at one instant."""
    snap = ClearinghouseSnapshot()
    with _read_only(path) as db:
        for row in db.execute(
            "SELECT transfer_id, flow, state, payer_region, payee_region, held_fen, posted_fen"
            " FROM transfers"
        ):
            tid, flow, stored, payer, payee, held, posted = row
            # The stored states (clearinghouse/transfer_states.py): `crediting` is a
            # commit whose payer posted, `aborting` an abort whose hold's release is
            # still awaited; here they count as committing and aborted.
            state = _DECISION_OF.get(stored, stored)
            t = TransferRow(
                tid,
                flow,
                state,
                payer,
                payee,
                held,
                posted,
                stored in ("crediting", "committed"),
                stored == "committed",
            )
            snap.transfers[t.transfer_id] = t
        has_legs = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'transfer_legs'"
        ).fetchone()
        if has_legs:  # a file written before care away from home has none
            for row in db.execute(
                "SELECT leg_id, transfer_id, source, region, state, held_fen, posted_fen"
                " FROM transfer_legs"
            ):
                snap.legs[row[0]] = LegRow(*row)
        for row in db.execute(
            "SELECT transfer_id, payer_region, payee_region, amount_fen FROM clearing_entries"
        ):
            snap.clearing[row[0]] = ClearingRow(*row)
        snap.settlement = read_clearinghouse_settlement(db)
        snap.newest_ms = _newest(db, "SELECT MAX(updated_at_ms) FROM transfers")
    return snap


def _journal_totals(db: sqlite3.Connection) -> dict[str, Totals]:
    """Every account's four totals as the journal says, by TigerBeetle's two-phase rules."""
    sums: dict[str, list[int]] = {}
    for side, column in ((0, "debit_account"), (2, "credit_account")):
        for account, phase, amount in db.execute(
            f"SELECT {column}, phase, SUM(amount_fen) FROM journal GROUP BY {column}, phase"
        ):
            t = sums.setdefault(account, [0, 0, 0, 0])  # [d pending, d posted, c pending, c posted]
            if phase == "posted":
                t[side + 1] += amount
            elif phase == "pending":
                t[side] += amount
            elif phase == "post":
                t[side] -= amount
                t[side + 1] += amount
            else:  # void
                t[side] -= amount
    return {account: Totals(*t) for account, t in sums.items()}


def read_region(code: str, path: Path) -> RegionSnapshot:
    """One region's books, holds, credits, bills and premiums, at one instant."""
    snap = RegionSnapshot(code, path)
    with _read_only(path) as db:
        for id_, no_overdraft, *totals in db.execute(
            "SELECT id, no_overdraft, debits_pending, debits_posted, credits_pending,"
            " credits_posted FROM ledger_accounts"
        ):
            snap.accounts[id_] = Account(id_, bool(no_overdraft), Totals(*totals))
        snap.journal_totals = _journal_totals(db)
        snap.journal_entries = int(db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])
        snap.opening_fen = int(
            db.execute(
                "SELECT COALESCE(SUM(CASE WHEN debit_account = ? THEN amount_fen"
                " ELSE -amount_fen END), 0) FROM journal WHERE phase = 'posted'"
                " AND (debit_account = ? OR credit_account = ?)",
                (OPENING_FUND, OPENING_FUND, OPENING_FUND),
            ).fetchone()[0]
        )
        like = INTERREGION + "%"
        snap.repeated = [
            (str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
            for r in db.execute(
                "SELECT transfer_id, phase, debit_account, credit_account, COUNT(*) FROM journal"
                " WHERE debit_account NOT LIKE ? AND credit_account NOT LIKE ?"
                " GROUP BY transfer_id, phase, debit_account, credit_account HAVING COUNT(*) > 1",
                (like, like),
            )
        ]
        snap.interregion = [
            Entry(*row)
            for row in db.execute(
                "SELECT seq, transfer_id, phase, debit_account, credit_account, amount_fen"
                " FROM journal WHERE debit_account LIKE ? OR credit_account LIKE ? ORDER BY seq",
                (like, like),
            )
        ]
        for row in db.execute(
            "SELECT transfer_id, payer, payee_region, held_fen, state, expires_at_ms FROM holds"
        ):
            snap.holds[row[0]] = HoldRow(*row)
        for row in db.execute("SELECT transfer_id, payer_region, flow, amount_fen FROM credits"):
            snap.credits[row[0]] = CreditRow(*row)
        for row in db.execute(
            "SELECT transfer_id, state, paid_fen, own_paid_fen, wallet_paid_fen FROM bills"
            " WHERE flow = 'copay'"
        ):
            snap.bills[row[0]] = BillRow(*row)
        snap.local_parts = dict(
            db.execute(
                "SELECT transfer_id, SUM(amount_fen) FROM journal WHERE phase = 'posted'"
                " AND credit_account = ? AND (transfer_id LIKE '%/own' OR transfer_id LIKE"
                " '%/wallet') GROUP BY transfer_id",
                (BILLS_PAID,),
            ).fetchall()
        )
        snap.premiums_paid = dict(
            db.execute("SELECT transfer_id, amount_fen FROM premiums WHERE state = 'paid'")
        )
        snap.premium_entries = dict(
            db.execute(
                "SELECT transfer_id, SUM(amount_fen) FROM journal WHERE phase = 'posted'"
                " AND credit_account = ? GROUP BY transfer_id",
                (PREMIUMS_PAID,),
            ).fetchall()
        )
        snap.settlement = read_region_settlement(code, db)
        snap.newest_ms = _newest(
            db,
            "SELECT MAX(at_ms) FROM journal",
            "SELECT MAX(MAX(created_at_ms), COALESCE(MAX(resolved_at_ms), 0)) FROM holds",
            "SELECT MAX(at_ms) FROM credits",
            "SELECT MAX(MAX(submitted_at_ms), COALESCE(MAX(settled_at_ms), 0)) FROM bills",
        )
    return snap
