"""The clearinghouse's SQLite: the region registry, the binding directory, transfer records."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from contracts.operations import Relationship
from contracts.reasons import ReasonCode
from storage.sqlite import Database, Synchronous, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    province TEXT NOT NULL,
    enabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    binding_id TEXT PRIMARY KEY,
    copayer TEXT NOT NULL,
    copayer_region TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    beneficiary_region TEXT NOT NULL,
    relationship TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bindings_by_beneficiary ON bindings (beneficiary, beneficiary_region);
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    payee_region TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    candidates TEXT NOT NULL DEFAULT '[]',
    payer TEXT NOT NULL DEFAULT '',
    payer_region TEXT NOT NULL DEFAULT '',
    held_fen INTEGER NOT NULL DEFAULT 0,
    posted_fen INTEGER NOT NULL DEFAULT 0,
    payer_posted INTEGER NOT NULL DEFAULT 0,
    payee_credited INTEGER NOT NULL DEFAULT 0,
    abort_pending INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    next_action_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS transfers_due
    ON transfers (next_action_ms) WHERE next_action_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS quotes (
    transfer_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    region TEXT NOT NULL,
    available_fen INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (transfer_id, psn_no, region)
);
"""


class TransferState(StrEnum):
    """A transfer's life at the coordinator.

    ``received`` and ``reserved`` are passed through inside one transaction (a request is
    checked and forwarded; a reserve result is turned into the commit decision at once),
    so stored records show the others.
    """

    RECEIVED = "received"
    QUOTING = "quoting"
    """Asking the regions of several bound co-payers for their balances."""
    RESERVING = "reserving"
    RESERVED = "reserved"
    COMMITTING = "committing"
    """Decided: commit. Posting at the payer, then crediting the payee, retried until done."""
    COMMITTED = "committed"
    ABORTED = "aborted"

    @property
    def final(self) -> bool:
        return self in (TransferState.COMMITTED, TransferState.ABORTED)


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    province: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Binding:
    binding_id: str
    copayer: str
    copayer_region: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class Candidate:
    """A co-payer who might pay: person number and region."""

    psn_no: str
    region: str


@dataclass(slots=True)
class Transfer:
    """The coordinator's durable record of one transfer (mutable; saved with ``save``)."""

    transfer_id: str
    flow: str
    beneficiary: str
    payee_region: str
    amount_fen: int
    state: TransferState
    created_at_ms: int
    updated_at_ms: int
    candidates: list[Candidate]
    payer: str = ""
    payer_region: str = ""
    held_fen: int = 0
    posted_fen: int = 0
    payer_posted: bool = False
    payee_credited: bool = False
    abort_pending: bool = False
    reason: ReasonCode | None = None
    detail: str = ""
    next_action_ms: int | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Quote:
    psn_no: str
    region: str
    available_fen: int
    reason: ReasonCode | None


_TRANSFER_COLUMNS = (
    "transfer_id, flow, beneficiary, payee_region, amount_fen, state, created_at_ms,"
    " updated_at_ms, candidates, payer, payer_region, held_fen, posted_fen, payer_posted,"
    " payee_credited, abort_pending, reason, detail, next_action_ms, attempts"
)


def _transfer_from_row(row: tuple[Any, ...]) -> Transfer:
    (tid, flow, beneficiary, payee_region, amount, state, created, updated, candidates,
     payer, payer_region, held, posted, payer_posted, payee_credited, abort_pending,
     reason, detail, next_action, attempts) = row  # fmt: skip
    return Transfer(
        transfer_id=str(tid),
        flow=str(flow),
        beneficiary=str(beneficiary),
        payee_region=str(payee_region),
        amount_fen=int(amount),
        state=TransferState(state),
        created_at_ms=int(created),
        updated_at_ms=int(updated),
        candidates=[Candidate(p, r) for p, r in json.loads(str(candidates))],
        payer=str(payer),
        payer_region=str(payer_region),
        held_fen=int(held),
        posted_fen=int(posted),
        payer_posted=bool(payer_posted),
        payee_credited=bool(payee_credited),
        abort_pending=bool(abort_pending),
        reason=None if reason is None else ReasonCode(reason),
        detail=str(detail),
        next_action_ms=next_action,
        attempts=int(attempts),
    )


class ClearinghouseStore:
    """The national platform's records, in one SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)

    @classmethod
    def open(cls, path: str | Path, *, synchronous: Synchronous = "FULL") -> ClearinghouseStore:
        return cls(open_database(path, synchronous=synchronous))

    @property
    def _sql(self) -> sqlite3.Connection:
        return self.db.connection

    # --- registry ---

    def region(self, code: str) -> Region | None:
        row = self._sql.execute(
            "SELECT code, name, province, enabled FROM regions WHERE code = ?", (code,)
        ).fetchone()
        return None if row is None else Region(row[0], row[1], row[2], bool(row[3]))

    def regions(self) -> list[Region]:
        rows = self._sql.execute(
            "SELECT code, name, province, enabled FROM regions ORDER BY code"
        ).fetchall()
        return [Region(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def upsert_region(self, region: Region) -> None:
        self._sql.execute(
            "INSERT INTO regions (code, name, province, enabled) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name,"
            " province = excluded.province, enabled = excluded.enabled",
            (region.code, region.name, region.province, int(region.enabled)),
        )

    def set_enabled(self, code: str, enabled: bool) -> bool:
        cursor = self._sql.execute(
            "UPDATE regions SET enabled = ? WHERE code = ?", (int(enabled), code)
        )
        return cursor.rowcount > 0

    # --- directory ---

    def add_binding(self, binding: Binding, at_ms: int) -> None:
        self._sql.execute(
            "INSERT OR IGNORE INTO bindings (binding_id, copayer, copayer_region, beneficiary,"
            " beneficiary_region, relationship, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                binding.binding_id,
                binding.copayer,
                binding.copayer_region,
                binding.beneficiary,
                binding.beneficiary_region,
                binding.relationship.value,
                at_ms,
            ),
        )

    def active_bindings_of(self, beneficiary: str, beneficiary_region: str) -> list[Binding]:
        rows = self._sql.execute(
            "SELECT binding_id, copayer, copayer_region, beneficiary, beneficiary_region,"
            " relationship FROM bindings WHERE beneficiary = ? AND beneficiary_region = ?"
            " AND active = 1 ORDER BY binding_id",
            (beneficiary, beneficiary_region),
        ).fetchall()
        return [Binding(r[0], r[1], r[2], r[3], r[4], Relationship(r[5])) for r in rows]

    # --- transfers ---

    def transfer(self, transfer_id: str) -> Transfer | None:
        row = self._sql.execute(
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        return None if row is None else _transfer_from_row(row)

    def save(self, t: Transfer) -> None:
        """Insert or replace the whole record (the decision is written before it is sent)."""
        self._sql.execute(
            f"INSERT OR REPLACE INTO transfers ({_TRANSFER_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.transfer_id,
                t.flow,
                t.beneficiary,
                t.payee_region,
                t.amount_fen,
                t.state.value,
                t.created_at_ms,
                t.updated_at_ms,
                json.dumps([[c.psn_no, c.region] for c in t.candidates]),
                t.payer,
                t.payer_region,
                t.held_fen,
                t.posted_fen,
                int(t.payer_posted),
                int(t.payee_credited),
                int(t.abort_pending),
                None if t.reason is None else t.reason.value,
                t.detail,
                t.next_action_ms,
                t.attempts,
            ),
        )

    def due(self, now_ms: int, limit: int = 500) -> list[Transfer]:
        rows = self._sql.execute(
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers"
            " WHERE next_action_ms IS NOT NULL AND next_action_ms <= ?"
            " ORDER BY next_action_ms LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [_transfer_from_row(r) for r in rows]

    def unfinished(self) -> list[Transfer]:
        rows = self._sql.execute(
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers"
            " WHERE state NOT IN ('committed', 'aborted') OR abort_pending = 1"
        ).fetchall()
        return [_transfer_from_row(r) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        return {
            s: n
            for s, n in self._sql.execute("SELECT state, COUNT(*) FROM transfers GROUP BY state")
        }

    # --- quotes ---

    def add_quote(self, transfer_id: str, quote: Quote) -> None:
        self._sql.execute(
            "INSERT OR IGNORE INTO quotes (transfer_id, psn_no, region, available_fen, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                transfer_id,
                quote.psn_no,
                quote.region,
                quote.available_fen,
                None if quote.reason is None else quote.reason.value,
            ),
        )

    def quotes(self, transfer_id: str) -> list[Quote]:
        rows = self._sql.execute(
            "SELECT psn_no, region, available_fen, reason FROM quotes WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchall()
        return [Quote(r[0], r[1], r[2], None if r[3] is None else ReasonCode(r[3])) for r in rows]

    def close(self) -> None:
        self.db.close()
