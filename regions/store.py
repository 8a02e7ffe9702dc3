"""What a region remembers: persons, holds, bills and credits, beside its books."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from contracts.operations import Insurance
from contracts.reasons import ReasonCode
from regions.books import Books
from storage.sqlite import Database, Synchronous, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    psn_no TEXT PRIMARY KEY,
    insurance TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '',
    enrolled_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    transfer_id TEXT PRIMARY KEY,
    payer TEXT,
    payee_region TEXT,
    flow TEXT NOT NULL DEFAULT 'copay',
    requested_fen INTEGER NOT NULL,
    held_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    expires_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    resolved_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS holds_pending_by_expiry
    ON holds (expires_at_ms) WHERE state = 'pending';
-- Requests submitted at this region and awaiting or holding their one final outcome:
-- bills (flow copay, here the payee) and co-payers' wallet transfers and premium
-- payments (here the payer).
CREATE TABLE IF NOT EXISTS bills (
    transfer_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL DEFAULT 'copay',
    beneficiary TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    reply_to TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    paid_fen INTEGER NOT NULL DEFAULT 0,
    own_paid_fen INTEGER NOT NULL DEFAULT 0,
    wallet_paid_fen INTEGER NOT NULL DEFAULT 0,
    aid_requested_fen INTEGER NOT NULL DEFAULT 0,
    payer TEXT NOT NULL DEFAULT '',
    payer_region TEXT NOT NULL DEFAULT '',
    counterparty_region TEXT NOT NULL DEFAULT '',
    year INTEGER NOT NULL DEFAULT 0,
    submitted_at_ms INTEGER NOT NULL,
    settled_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS bills_by_payer_day ON bills (payer, flow, submitted_at_ms);
CREATE TABLE IF NOT EXISTS binding_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    copayer TEXT NOT NULL,
    binding_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS premiums (
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (psn_no, year)
);
CREATE TABLE IF NOT EXISTS settlement_lines (
    window INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    payer_region TEXT NOT NULL,
    payee_region TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (window, transfer_id)
);
CREATE TABLE IF NOT EXISTS settlement_reports (
    window INTEGER PRIMARY KEY,
    paid_fen INTEGER NOT NULL,
    received_fen INTEGER NOT NULL,
    net_fen INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER NOT NULL,
    disagreements INTEGER,
    reconciled_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS credits (
    transfer_id TEXT PRIMARY KEY,
    payer_region TEXT NOT NULL,
    flow TEXT NOT NULL DEFAULT 'copay',
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
"""


class HoldState(StrEnum):
    """The life of a reserve at the payer region (TigerBeetle's pending/posted/voided)."""

    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    REFUSED = "refused"
    """The reserve was refused; nothing was ever held."""


class BillState(StrEnum):
    REQUESTED = "requested"
    """Aid was asked of the clearinghouse; no final outcome yet."""
    SETTLED = "settled"
    """The final outcome is known (paid in full or part, or refused)."""


@dataclass(frozen=True, slots=True)
class Hold:
    transfer_id: str
    payer: str | None
    payee_region: str | None
    requested_fen: int
    held_fen: int
    state: HoldState
    reason: ReasonCode | None
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Bill:
    transfer_id: str
    beneficiary: str
    amount_fen: int
    reply_to: str
    state: BillState
    reason: ReasonCode | None
    detail: str
    paid_fen: int
    payer_region: str


def person_account(psn_no: str) -> str:
    return f"psn:{psn_no}"


def interregion_account(region: str) -> str:
    return f"interregion:{region}"


OPENING_FUND = "fund:opening"
BILLS_PAID = "bills:paid"


def _reason(value: str | None) -> ReasonCode | None:
    return None if value is None else ReasonCode(value)


class RegionStore:
    """The SQLite file of one region: its books plus the records its handlers need."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        self.books = Books(db)
        with db.transaction():
            self.books.open_account(OPENING_FUND, no_overdraft=False)
            self.books.open_account(BILLS_PAID, no_overdraft=False)

    @classmethod
    def open(cls, path: str | Path, *, synchronous: Synchronous = "FULL") -> RegionStore:
        return cls(open_database(path, synchronous=synchronous))

    @property
    def _sql(self) -> sqlite3.Connection:
        return self.db.connection

    # --- persons ---

    def insurance_of(self, psn_no: str) -> Insurance | None:
        row = self._sql.execute(
            "SELECT insurance FROM persons WHERE psn_no = ?", (psn_no,)
        ).fetchone()
        return None if row is None else Insurance(row[0])

    def add_person(self, psn_no: str, insurance: Insurance, at_ms: int) -> None:
        self._sql.execute(
            "INSERT INTO persons (psn_no, insurance, enrolled_at_ms) VALUES (?, ?, ?)",
            (psn_no, insurance.value, at_ms),
        )

    def person_count(self) -> int:
        return int(self._sql.execute("SELECT COUNT(*) FROM persons").fetchone()[0])

    # --- holds ---

    def hold(self, transfer_id: str) -> Hold | None:
        row = self._sql.execute(
            "SELECT transfer_id, payer, payee_region, requested_fen, held_fen, state, reason,"
            " expires_at_ms FROM holds WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        if row is None:
            return None
        return Hold(
            row[0], row[1], row[2], row[3], row[4], HoldState(row[5]), _reason(row[6]), row[7]
        )

    def add_hold(
        self,
        transfer_id: str,
        payer: str | None,
        payee_region: str | None,
        requested_fen: int,
        held_fen: int,
        state: HoldState,
        reason: ReasonCode | None,
        expires_at_ms: int,
        at_ms: int,
    ) -> None:
        self._sql.execute(
            "INSERT INTO holds (transfer_id, payer, payee_region, requested_fen, held_fen, state,"
            " reason, expires_at_ms, created_at_ms, resolved_at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                transfer_id,
                payer,
                payee_region,
                requested_fen,
                held_fen,
                state.value,
                None if reason is None else reason.value,
                expires_at_ms,
                at_ms,
                None if state is HoldState.PENDING else at_ms,
            ),
        )

    def resolve_hold(
        self, transfer_id: str, state: HoldState, reason: ReasonCode | None, at_ms: int
    ) -> None:
        self._sql.execute(
            "UPDATE holds SET state = ?, reason = ?, resolved_at_ms = ? WHERE transfer_id = ?",
            (state.value, None if reason is None else reason.value, at_ms, transfer_id),
        )

    def expired_holds(self, now_ms: int, limit: int = 1000) -> list[Hold]:
        rows = self._sql.execute(
            "SELECT transfer_id FROM holds WHERE state = 'pending' AND expires_at_ms <= ?"
            " ORDER BY expires_at_ms LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [hold for (tid,) in rows if (hold := self.hold(tid)) is not None]

    def holds_by_state(self) -> dict[str, int]:
        return {
            state: count
            for state, count in self._sql.execute(
                "SELECT state, COUNT(*) FROM holds GROUP BY state"
            )
        }

    # --- bills ---

    def bill(self, transfer_id: str) -> Bill | None:
        row = self._sql.execute(
            "SELECT transfer_id, beneficiary, amount_fen, reply_to, state, reason, detail,"
            " paid_fen, payer_region FROM bills WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        if row is None:
            return None
        return Bill(
            row[0],
            row[1],
            row[2],
            row[3],
            BillState(row[4]),
            _reason(row[5]),
            row[6],
            row[7],
            row[8],
        )

    def add_bill(
        self, transfer_id: str, beneficiary: str, amount_fen: int, reply_to: str, at_ms: int
    ) -> None:
        self._sql.execute(
            "INSERT INTO bills (transfer_id, beneficiary, amount_fen, reply_to, state,"
            " submitted_at_ms) VALUES (?, ?, ?, ?, 'requested', ?)",
            (transfer_id, beneficiary, amount_fen, reply_to, at_ms),
        )

    def settle_bill(
        self,
        transfer_id: str,
        *,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        at_ms: int,
    ) -> None:
        self._sql.execute(
            "UPDATE bills SET state = 'settled', paid_fen = ?, payer_region = ?, reason = ?,"
            " detail = ?, settled_at_ms = ? WHERE transfer_id = ?",
            (
                paid_fen,
                payer_region,
                None if reason is None else reason.value,
                detail,
                at_ms,
                transfer_id,
            ),
        )

    # --- credits (incoming co-payments) ---

    def credit_amount(self, transfer_id: str) -> int | None:
        row = self._sql.execute(
            "SELECT amount_fen FROM credits WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def add_credit(self, transfer_id: str, payer_region: str, amount_fen: int, at_ms: int) -> None:
        self._sql.execute(
            "INSERT INTO credits (transfer_id, payer_region, amount_fen, at_ms)"
            " VALUES (?, ?, ?, ?)",
            (transfer_id, payer_region, amount_fen, at_ms),
        )

    def close(self) -> None:
        self.db.close()
