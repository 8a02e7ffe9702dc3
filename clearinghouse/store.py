"""The clearinghouse's SQLite: the region registry, the binding directory, transfer records
and their history."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

# TransferState is re-exported: the store is where most readers meet it.
from clearinghouse.transfer_states import TransferEvent
from clearinghouse.transfer_states import TransferState as TransferState
from contracts.policy import (
    DEFAULT_RESIDENT_PREMIUM_FEN,
    NATIONAL_WALLET_MAX_PER_TRANSFER_FEN,
    NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY,
    Policy,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow, PaymentOrder, Relationship, Scope
from storage.cache import MISS, RowCache
from storage.sqlite import Database, Synchronous, open_database

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    province TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    scope TEXT NOT NULL DEFAULT '2024',
    payment_order TEXT NOT NULL DEFAULT 'own_first',
    wallet_enabled INTEGER NOT NULL DEFAULT 1,
    wallet_max_per_transfer_fen INTEGER NOT NULL DEFAULT {NATIONAL_WALLET_MAX_PER_TRANSFER_FEN},
    wallet_max_transfers_per_day INTEGER NOT NULL DEFAULT {NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY},
    resident_premium_fen INTEGER NOT NULL DEFAULT {DEFAULT_RESIDENT_PREMIUM_FEN}
);
CREATE TABLE IF NOT EXISTS bindings (
    binding_id TEXT PRIMARY KEY,
    copayer TEXT NOT NULL,
    copayer_region TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    beneficiary_region TEXT NOT NULL,
    relationship TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    next_action_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS bindings_by_beneficiary ON bindings (beneficiary, beneficiary_region);
CREATE INDEX IF NOT EXISTS bindings_by_copayer ON bindings (copayer, copayer_region);
CREATE INDEX IF NOT EXISTS bindings_due
    ON bindings (next_action_ms) WHERE next_action_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS windows (
    window INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    close_request_id TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS clearing_entries (
    transfer_id TEXT PRIMARY KEY,
    window INTEGER NOT NULL,
    flow TEXT NOT NULL,
    payer_region TEXT NOT NULL,
    payee_region TEXT NOT NULL,
    amount_fen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS clearing_by_window ON clearing_entries (window);
CREATE TABLE IF NOT EXISTS reconciliations (
    window INTEGER NOT NULL,
    region TEXT NOT NULL,
    disagreements INTEGER NOT NULL,
    paid_fen INTEGER NOT NULL,
    received_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (window, region)
);
CREATE TABLE IF NOT EXISTS disagreements (
    window INTEGER NOT NULL,
    region TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    region_fen INTEGER NOT NULL,
    report_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (window, region, transfer_id)
);
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
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    next_action_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    year INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS transfers_due
    ON transfers (next_action_ms) WHERE next_action_ms IS NOT NULL;
-- One row per state change of a transfer, written with the change (see transfer_states).
CREATE TABLE IF NOT EXISTS transfer_history (
    transfer_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (transfer_id, seq)
);
CREATE TABLE IF NOT EXISTS quotes (
    transfer_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    region TEXT NOT NULL,
    available_fen INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (transfer_id, psn_no, region)
);
"""


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    province: str
    enabled: bool
    policy: Policy = field(default_factory=Policy)

    def label(self) -> str:
        return f"{self.code} ({self.name})"


class BindingStatus(StrEnum):
    VERIFYING = "verifying"
    """Proposed; waiting for the beneficiary's region to confirm the insurance."""
    ACTIVE = "active"
    ENDED = "ended"
    """Revoked by the co-payer, or ended by a change of insurance."""
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Binding:
    binding_id: str
    copayer: str
    copayer_region: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship
    status: BindingStatus = BindingStatus.ACTIVE
    reason: ReasonCode | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    window: int
    state: str
    """``open`` or ``closed``."""
    opened_at_ms: int
    closed_at_ms: int | None
    close_request_id: str | None


@dataclass(frozen=True, slots=True)
class ClearingEntry:
    transfer_id: str
    window: int
    flow: Flow
    payer_region: str
    payee_region: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class DisagreementRecord:
    window: int
    region: str
    transfer_id: str
    kind: str
    region_fen: int
    report_fen: int
    state: str
    """``repairing``, ``repaired``, ``explained`` (cleared in another window), ``in_flight``
    (not finished at the close; cleared later), ``unresolved``."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A co-payer who might pay: person number and region."""

    psn_no: str
    region: str


@dataclass(slots=True)
class Transfer:
    """The coordinator's durable record of one transfer (mutable; saved with ``save``)."""

    transfer_id: str
    flow: Flow
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
    reason: ReasonCode | None = None
    detail: str = ""
    next_action_ms: int | None = None
    attempts: int = 0
    year: int = 0

    @property
    def requester_region(self) -> str:
        """Who asked, and so hears the outcome: the payee for a bill, else the payer."""
        return self.payee_region if self.flow is Flow.COPAY else self.payer_region

    @property
    def payer_posted(self) -> bool:
        """The payer region reported its hold posted (the money left the payer)."""
        return self.state in (TransferState.CREDITING, TransferState.COMMITTED)

    @property
    def abort_pending(self) -> bool:
        """Aborted, and the payer region has not yet confirmed that nothing is held."""
        return self.state is TransferState.ABORTING

    def copy(self) -> Transfer:
        """An independent record: what the store hands out, so that changes a handler makes
        and does not save never reach the store's cache."""
        return Transfer(
            self.transfer_id,
            self.flow,
            self.beneficiary,
            self.payee_region,
            self.amount_fen,
            self.state,
            self.created_at_ms,
            self.updated_at_ms,
            list(self.candidates),
            self.payer,
            self.payer_region,
            self.held_fen,
            self.posted_fen,
            self.reason,
            self.detail,
            self.next_action_ms,
            self.attempts,
            self.year,
        )


@dataclass(frozen=True, slots=True)
class StateChange:
    """One row of a transfer's history: a state change, when, and on what event."""

    seq: int
    at_ms: int
    from_state: TransferState | None
    """None on the first row (the request received)."""
    to_state: TransferState
    event: TransferEvent
    detail: str


@dataclass(frozen=True, slots=True)
class Quote:
    psn_no: str
    region: str
    available_fen: int
    reason: ReasonCode | None


_TRANSFER_COLUMNS = (
    "transfer_id, flow, beneficiary, payee_region, amount_fen, state, created_at_ms,"
    " updated_at_ms, candidates, payer, payer_region, held_fen, posted_fen,"
    " reason, detail, next_action_ms, attempts, year"
)


def _transfer_from_row(row: tuple[Any, ...]) -> Transfer:
    (
        tid,
        flow,
        beneficiary,
        payee_region,
        amount,
        state,
        created,
        updated,
        candidates,
        payer,
        payer_region,
        held,
        posted,
        reason,
        detail,
        next_action,
        attempts,
        year,
    ) = row
    return Transfer(
        transfer_id=str(tid),
        flow=Flow(flow),
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
        reason=None if reason is None else ReasonCode(reason),
        detail=str(detail),
        next_action_ms=next_action,
        attempts=int(attempts),
        year=int(year),
    )


_CHANGEABLE_COLUMNS = (
    "flow",
    "beneficiary",
    "payee_region",
    "amount_fen",
    "state",
    "created_at_ms",
    "updated_at_ms",
    "payer",
    "payer_region",
    "held_fen",
    "posted_fen",
    "reason",
    "detail",
    "next_action_ms",
    "attempts",
    "year",
)
"""Every column but the id and the candidates, in the order of ``_changeable_values``."""


def _changeable_values(t: Transfer) -> tuple[object, ...]:
    return (
        t.flow,
        t.beneficiary,
        t.payee_region,
        t.amount_fen,
        t.state.value,
        t.created_at_ms,
        t.updated_at_ms,
        t.payer,
        t.payer_region,
        t.held_fen,
        t.posted_fen,
        None if t.reason is None else t.reason.value,
        t.detail,
        t.next_action_ms,
        t.attempts,
        t.year,
    )


_SET_CHANGEABLE = ", ".join(f"{c} = ?" for c in _CHANGEABLE_COLUMNS)
_INSERT_TRANSFER = (
    f"INSERT OR REPLACE INTO transfers (transfer_id, candidates, {', '.join(_CHANGEABLE_COLUMNS)})"
    f" VALUES ({', '.join('?' * (len(_CHANGEABLE_COLUMNS) + 2))})"
)
_UPDATE_TRANSFER = f"UPDATE transfers SET {_SET_CHANGEABLE} WHERE transfer_id = ?"
_UPDATE_TRANSFER_AND_CANDIDATES = (
    f"UPDATE transfers SET {_SET_CHANGEABLE}, candidates = ? WHERE transfer_id = ?"
)


def _clearing_entry(row: tuple[Any, ...]) -> ClearingEntry:
    tid, window, flow, payer_region, payee_region, amount = row
    return ClearingEntry(tid, window, Flow(flow), payer_region, payee_region, amount)


def history_of(sql: sqlite3.Connection, transfer_id: str) -> list[StateChange]:
    """A transfer's state changes in order (also for a read-only connection)."""
    rows = sql.execute(
        "SELECT seq, at_ms, from_state, to_state, event, detail FROM transfer_history"
        " WHERE transfer_id = ? ORDER BY seq",
        (transfer_id,),
    ).fetchall()
    return [
        StateChange(
            int(seq),
            int(at),
            None if before is None else TransferState(before),
            TransferState(after),
            TransferEvent(event),
            str(detail),
        )
        for seq, at, before, after, event, detail in rows
    ]


def _candidates_json(candidates: list[Candidate]) -> str:
    return json.dumps([[c.psn_no, c.region] for c in candidates])


class ClearinghouseStore:
    """The national platform's records, in one SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        self._migrate()
        # Write-through caches (see storage.cache): the rows each step reads again.
        self._transfers: RowCache[str, Transfer] = db.row_cache("transfers")
        self._regions: RowCache[str, Region] = db.row_cache("regions")
        self._bindings_of: RowCache[tuple[str, str], tuple[Binding, ...]] = db.row_cache(
            "bindings_of"
        )
        self._open_window: RowCache[str, Window] = db.row_cache("open_window")

    _FLAG_COLUMNS = ("payer_posted", "payee_credited", "abort_pending")
    """Columns of files written before the state machine: two steps were flags then."""

    def _migrate(self) -> None:
        """Turn an older file's flags into the states they stood for, then drop them."""
        columns = {row[1] for row in self._sql.execute("PRAGMA table_info(transfers)")}
        old = [c for c in self._FLAG_COLUMNS if c in columns]
        if not old:
            return
        with self.db.transaction():
            if "payer_posted" in old:
                self._sql.execute(
                    "UPDATE transfers SET state = 'crediting'"
                    " WHERE state = 'committing' AND payer_posted = 1"
                )
            if "abort_pending" in old:
                self._sql.execute(
                    "UPDATE transfers SET state = 'aborting'"
                    " WHERE state = 'aborted' AND abort_pending = 1"
                )
            for column in old:
                self._sql.execute(f"ALTER TABLE transfers DROP COLUMN {column}")

    @classmethod
    def open(
        cls, path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
    ) -> ClearinghouseStore:
        """``cached=False`` for a reader while the clearinghouse service writes the file."""
        return cls(open_database(path, synchronous=synchronous, cached=cached))

    @property
    def _sql(self) -> sqlite3.Connection:
        return self.db.connection

    # --- registry ---

    _REGION_COLUMNS = (
        "code, name, province, enabled, scope, payment_order, wallet_enabled,"
        " wallet_max_per_transfer_fen, wallet_max_transfers_per_day, resident_premium_fen"
    )

    @staticmethod
    def _region_from_row(r: tuple[Any, ...]) -> Region:
        policy = Policy(Scope(r[4]), PaymentOrder(r[5]), bool(r[6]), r[7], r[8], r[9])
        return Region(r[0], r[1], r[2], bool(r[3]), policy)

    def region(self, code: str) -> Region | None:
        cached = self._regions.get(code)
        if cached is not MISS:
            return cached
        row = self._sql.execute(
            f"SELECT {self._REGION_COLUMNS} FROM regions WHERE code = ?", (code,)
        ).fetchone()
        region = None if row is None else self._region_from_row(row)
        self._regions.put(code, region)
        return region

    def regions(self) -> list[Region]:
        rows = self._sql.execute(f"SELECT {self._REGION_COLUMNS} FROM regions ORDER BY code")
        return [self._region_from_row(r) for r in rows.fetchall()]

    def upsert_region(self, region: Region) -> None:
        p = region.policy
        self._sql.execute(
            f"INSERT OR REPLACE INTO regions ({self._REGION_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                region.code,
                region.name,
                region.province,
                int(region.enabled),
                p.scope.value,
                p.payment_order.value,
                int(p.wallet_enabled),
                p.wallet_max_per_transfer_fen,
                p.wallet_max_transfers_per_day,
                p.resident_premium_fen,
            ),
        )
        self._regions.put(region.code, region)

    def set_enabled(self, code: str, enabled: bool) -> bool:
        cursor = self._sql.execute(
            "UPDATE regions SET enabled = ? WHERE code = ?", (int(enabled), code)
        )
        self._regions.forget(code)
        return cursor.rowcount > 0

    # --- directory ---

    _BINDING_COLUMNS = (
        "binding_id, copayer, copayer_region, beneficiary, beneficiary_region, relationship,"
        " status, reason, detail"
    )

    @staticmethod
    def _binding_from_row(r: tuple[Any, ...]) -> Binding:
        reason = None if r[7] is None else ReasonCode(r[7])
        return Binding(
            r[0], r[1], r[2], r[3], r[4], Relationship(r[5]), BindingStatus(r[6]), reason, r[8]
        )

    def add_binding(self, binding: Binding, at_ms: int, next_action_ms: int | None = None) -> None:
        """Insert a binding (idempotent by id: an existing one is left as it is)."""
        self._sql.execute(
            f"INSERT OR IGNORE INTO bindings ({self._BINDING_COLUMNS}, next_action_ms,"
            " created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                binding.binding_id,
                binding.copayer,
                binding.copayer_region,
                binding.beneficiary,
                binding.beneficiary_region,
                binding.relationship.value,
                binding.status.value,
                None if binding.reason is None else binding.reason.value,
                binding.detail,
                next_action_ms,
                at_ms,
            ),
        )
        self._bindings_of.forget((binding.beneficiary, binding.beneficiary_region))

    def binding(self, binding_id: str) -> Binding | None:
        row = self._sql.execute(
            f"SELECT {self._BINDING_COLUMNS} FROM bindings WHERE binding_id = ?", (binding_id,)
        ).fetchone()
        return None if row is None else self._binding_from_row(row)

    def set_binding_status(
        self,
        binding_id: str,
        status: BindingStatus,
        at_ms: int,
        reason: ReasonCode | None = None,
        detail: str = "",
    ) -> None:
        ended = at_ms if status in (BindingStatus.ENDED, BindingStatus.REFUSED) else None
        self._sql.execute(
            "UPDATE bindings SET status = ?, reason = ?, detail = ?, next_action_ms = NULL,"
            " ended_at_ms = ? WHERE binding_id = ?",
            (status.value, None if reason is None else reason.value, detail, ended, binding_id),
        )
        self._bindings_of.clear()  # rare: a binding ends, is refused or becomes active

    def active_bindings_of(self, beneficiary: str, beneficiary_region: str) -> list[Binding]:
        key = (beneficiary, beneficiary_region)
        cached = self._bindings_of.get(key)
        if cached is not MISS and cached is not None:
            return list(cached)
        rows = self._sql.execute(
            f"SELECT {self._BINDING_COLUMNS} FROM bindings WHERE beneficiary = ?"
            " AND beneficiary_region = ? AND status = 'active' ORDER BY binding_id",
            (beneficiary, beneficiary_region),
        ).fetchall()
        bindings = tuple(self._binding_from_row(r) for r in rows)
        self._bindings_of.put(key, bindings)
        return list(bindings)

    def active_bindings_by(self, copayer: str, copayer_region: str) -> list[Binding]:
        rows = self._sql.execute(
            f"SELECT {self._BINDING_COLUMNS} FROM bindings WHERE copayer = ?"
            " AND copayer_region = ? AND status = 'active' ORDER BY binding_id",
            (copayer, copayer_region),
        ).fetchall()
        return [self._binding_from_row(r) for r in rows]

    def due_bindings(self, now_ms: int) -> list[Binding]:
        rows = self._sql.execute(
            f"SELECT {self._BINDING_COLUMNS} FROM bindings"
            " WHERE next_action_ms IS NOT NULL AND next_action_ms <= ?",
            (now_ms,),
        ).fetchall()
        return [self._binding_from_row(r) for r in rows]

    # --- transfers ---

    def transfer(self, transfer_id: str) -> Transfer | None:
        """The record (the caller's own copy, to change and ``save``), or None."""
        cached = self._transfers.get(transfer_id)
        if cached is not MISS:
            return None if cached is None else cached.copy()
        row = self._sql.execute(
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        if row is None:
            self._transfers.put(transfer_id, None)
            return None
        t = _transfer_from_row(row)
        self._transfers.put(transfer_id, t.copy())
        return t

    def save(self, t: Transfer) -> None:
        """Write the whole record (the decision is written before it is sent).

        A record this store knows to exist is updated in place, its candidates only if
        they changed: an UPDATE costs about half an INSERT OR REPLACE here."""
        values = _changeable_values(t)
        previous = self._transfers.get(t.transfer_id)
        if previous is not MISS and previous is not None:
            if t.candidates == previous.candidates:
                cursor = self._sql.execute(_UPDATE_TRANSFER, (*values, t.transfer_id))
            else:
                cursor = self._sql.execute(
                    _UPDATE_TRANSFER_AND_CANDIDATES,
                    (*values, _candidates_json(t.candidates), t.transfer_id),
                )
            updated = cursor.rowcount == 1
        else:
            updated = False
        if not updated:
            self._sql.execute(
                _INSERT_TRANSFER, (t.transfer_id, _candidates_json(t.candidates), *values)
            )
        self._transfers.put(t.transfer_id, t.copy())

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
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE state NOT IN ('committed', 'aborted')"
        ).fetchall()
        return [_transfer_from_row(r) for r in rows]

    # --- history ---

    def add_history(
        self,
        transfer_id: str,
        at_ms: int,
        from_state: TransferState | None,
        to_state: TransferState,
        event: TransferEvent,
        detail: str = "",
    ) -> None:
        """Append a state change (the caller's transaction writes it with the change)."""
        self._sql.execute(
            "INSERT INTO transfer_history (transfer_id, seq, at_ms, from_state, to_state, event,"
            " detail) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM transfer_history"
            " WHERE transfer_id = ?), ?, ?, ?, ?, ?)",
            (
                transfer_id,
                transfer_id,
                at_ms,
                None if from_state is None else from_state.value,
                to_state.value,
                event.value,
                detail,
            ),
        )

    def history(self, transfer_id: str) -> list[StateChange]:
        return history_of(self._sql, transfer_id)

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

    # --- clearing windows ---

    def open_window(self, now_ms: int) -> Window:
        """The open clearing window, opening window 1 on first use."""
        cached = self._open_window.get("open")
        if cached is not MISS and cached is not None:
            return cached
        window = self._read_open_window(now_ms)
        self._open_window.put("open", window)
        return window

    def _read_open_window(self, now_ms: int) -> Window:
        row = self._sql.execute(
            "SELECT window, state, opened_at_ms, closed_at_ms, close_request_id FROM windows"
            " WHERE state = 'open'"
        ).fetchone()
        if row is not None:
            return Window(*row)
        last = self._sql.execute("SELECT COALESCE(MAX(window), 0) FROM windows").fetchone()[0]
        self._sql.execute(
            "INSERT INTO windows (window, state, opened_at_ms) VALUES (?, 'open', ?)",
            (last + 1, now_ms),
        )
        return Window(last + 1, "open", now_ms, None, None)

    def window(self, number: int) -> Window | None:
        row = self._sql.execute(
            "SELECT window, state, opened_at_ms, closed_at_ms, close_request_id FROM windows"
            " WHERE window = ?",
            (number,),
        ).fetchone()
        return None if row is None else Window(*row)

    def window_closed_by(self, request_id: str) -> Window | None:
        row = self._sql.execute(
            "SELECT window, state, opened_at_ms, closed_at_ms, close_request_id FROM windows"
            " WHERE close_request_id = ?",
            (request_id,),
        ).fetchone()
        return None if row is None else Window(*row)

    def latest_closed_window(self) -> Window | None:
        row = self._sql.execute(
            "SELECT window, state, opened_at_ms, closed_at_ms, close_request_id FROM windows"
            " WHERE state = 'closed' ORDER BY window DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Window(*row)

    def close_window(self, number: int, request_id: str, now_ms: int) -> None:
        self._open_window.clear()
        self._sql.execute(
            "UPDATE windows SET state = 'closed', closed_at_ms = ?, close_request_id = ?"
            " WHERE window = ?",
            (now_ms, request_id, number),
        )

    def add_clearing_entry(self, entry: ClearingEntry) -> None:
        self._sql.execute(
            "INSERT OR IGNORE INTO clearing_entries (transfer_id, window, flow, payer_region,"
            " payee_region, amount_fen) VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.transfer_id,
                entry.window,
                entry.flow,
                entry.payer_region,
                entry.payee_region,
                entry.amount_fen,
            ),
        )

    def clearing_entry(self, transfer_id: str) -> ClearingEntry | None:
        row = self._sql.execute(
            "SELECT transfer_id, window, flow, payer_region, payee_region, amount_fen"
            " FROM clearing_entries WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        return None if row is None else _clearing_entry(row)

    def clearing_entries(self, window: int) -> list[ClearingEntry]:
        rows = self._sql.execute(
            "SELECT transfer_id, window, flow, payer_region, payee_region, amount_fen"
            " FROM clearing_entries WHERE window = ? ORDER BY transfer_id",
            (window,),
        ).fetchall()
        return [_clearing_entry(r) for r in rows]

    def put_reconciliation(
        self, window: int, region: str, disagreements: int, paid: int, received: int, at_ms: int
    ) -> None:
        self._sql.execute(
            "INSERT OR REPLACE INTO reconciliations (window, region, disagreements, paid_fen,"
            " received_fen, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (window, region, disagreements, paid, received, at_ms),
        )

    def reconciliations(self, window: int) -> dict[str, int]:
        """Region -> disagreements it reported in its latest check of the window."""
        rows = self._sql.execute(
            "SELECT region, disagreements FROM reconciliations WHERE window = ?", (window,)
        )
        return dict(rows.fetchall())

    def put_disagreement(self, d: DisagreementRecord, at_ms: int) -> None:
        self._sql.execute(
            "INSERT OR REPLACE INTO disagreements (window, region, transfer_id, kind, region_fen,"
            " report_fen, state, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (d.window, d.region, d.transfer_id, d.kind, d.region_fen, d.report_fen, d.state, at_ms),
        )

    def disagreements(self, window: int) -> list[DisagreementRecord]:
        rows = self._sql.execute(
            "SELECT window, region, transfer_id, kind, region_fen, report_fen, state"
            " FROM disagreements WHERE window = ? ORDER BY region, transfer_id",
            (window,),
        ).fetchall()
        return [DisagreementRecord(*r) for r in rows]

    def mark_repaired(self, window: int, region: str, at_ms: int) -> int:
        cursor = self._sql.execute(
            "UPDATE disagreements SET state = 'repaired', at_ms = ?"
            " WHERE window = ? AND region = ? AND state = 'repairing'",
            (at_ms, window, region),
        )
        return cursor.rowcount

    def close(self) -> None:
        self.db.close()
