"""Transfers: the coordinator's record of each one, its history of state changes, and the
quotes co-payers' regions gave for it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from clearinghouse.transfer_states import LegState, TransferEvent, TransferState
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow
from storage.cache import MISS, RowCache
from storage.sqlite import Database
from storage.table import Codec, Table

SCHEMA = """
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
    year INTEGER NOT NULL DEFAULT 0,
    insured_region TEXT NOT NULL DEFAULT ''
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
-- The legs of a transfer with several payers (care away from home): one hold each.
CREATE TABLE IF NOT EXISTS transfer_legs (
    leg_id TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    region TEXT NOT NULL,
    payer TEXT NOT NULL,
    state TEXT NOT NULL,
    held_fen INTEGER NOT NULL DEFAULT 0,
    posted_fen INTEGER NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS legs_by_transfer ON transfer_legs (transfer_id, seq);
CREATE TABLE IF NOT EXISTS quotes (
    transfer_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    region TEXT NOT NULL,
    available_fen INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (transfer_id, psn_no, region)
);
"""

ADDED_COLUMNS = ("insured_region TEXT NOT NULL DEFAULT ''",)
"""Columns a file written before care away from home lacks (added on opening)."""


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
    insured_region: str = ""
    """Where the beneficiary is insured, for a bill at a region of care (flow ``away``)."""

    @property
    def requester_region(self) -> str:
        """Who asked, and so hears the outcome: the payee for a bill (at the beneficiary's
        region or at the region of care), else the payer."""
        return self.payee_region if self.flow in (Flow.COPAY, Flow.AWAY) else self.payer_region

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
            self.insured_region,
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
class Leg:
    """One payer leg of a transfer with several payers: a hold at ``region`` on the
    ``source`` (``wallet``, ``own`` account, ``copayer``'s account) of ``payer``."""

    leg_id: str
    """The id the leg's hold, commit and credit carry (the transfer id and the source)."""
    transfer_id: str
    seq: int
    source: str
    region: str
    payer: str
    state: LegState
    held_fen: int = 0
    posted_fen: int = 0
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    psn_no: str
    region: str
    available_fen: int
    reason: ReasonCode | None


def _candidates_to_sql(candidates: list[Candidate]) -> str:
    return json.dumps([[c.psn_no, c.region] for c in candidates])


def _candidates_from_sql(text: str) -> list[Candidate]:
    return [Candidate(psn_no, region) for psn_no, region in json.loads(text)]


TRANSFERS = Table(
    "transfers",
    Transfer,
    codecs={"candidates": Codec(_candidates_to_sql, _candidates_from_sql)},
)
"""The candidates are one column, a JSON list of [person, region]."""
HISTORY = Table("transfer_history", StateChange)
QUOTES = Table("quotes", Quote)
LEGS = Table("transfer_legs", Leg)

_SELECT = TRANSFERS.select("transfer_id = ?")
_DUE = TRANSFERS.select(
    "next_action_ms IS NOT NULL AND next_action_ms <= ?", order_by="next_action_ms", limit="?"
)
_UNFINISHED = TRANSFERS.select("state NOT IN ('committed', 'aborted')")
_INSERT = TRANSFERS.insert(verb="INSERT OR REPLACE")
_BUT_CANDIDATES = tuple(c for c in TRANSFERS.columns if c not in ("transfer_id", "candidates"))
_UPDATE = TRANSFERS.update(_BUT_CANDIDATES, "transfer_id = :transfer_id")
_UPDATE_WITH_CANDIDATES = TRANSFERS.update(
    (*_BUT_CANDIDATES, "candidates"), "transfer_id = :transfer_id"
)
_HISTORY_OF = HISTORY.select("transfer_id = ?", order_by="seq")
_ADD_QUOTE = QUOTES.insert("transfer_id", verb="INSERT OR IGNORE")
_QUOTES_OF = QUOTES.select("transfer_id = ?")
_LEG = LEGS.select("leg_id = ?")
_LEGS_OF = LEGS.select("transfer_id = ?", order_by="seq")
_PUT_LEG = LEGS.insert(verb="INSERT OR REPLACE")


def history_of(sql: sqlite3.Connection, transfer_id: str) -> list[StateChange]:
    """A transfer's state changes in order (also for a read-only connection)."""
    return [HISTORY.read(row) for row in sql.execute(_HISTORY_OF, (transfer_id,)).fetchall()]


class Transfers:
    """The ``transfers``, ``transfer_history`` and ``quotes`` tables; transfer records are
    remembered write-through by id (each caller gets its own copy)."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._transfers: RowCache[str, Transfer] = db.row_cache("transfers")

    def get(self, transfer_id: str) -> Transfer | None:
        """The record (the caller's own copy, to change and ``save``), or None."""
        cached = self._transfers.get(transfer_id)
        if cached is not MISS:
            return None if cached is None else cached.copy()
        row = self._sql.execute(_SELECT, (transfer_id,)).fetchone()
        if row is None:
            self._transfers.put(transfer_id, None)
            return None
        t = TRANSFERS.read(row)
        self._transfers.put(transfer_id, t.copy())
        return t

    def save(self, t: Transfer) -> None:
        """Write the whole record (the decision is written before it is sent).

        A record this store knows to exist is updated in place, its candidates only if
        they changed: an UPDATE costs about half an INSERT OR REPLACE here."""
        previous = self._transfers.get(t.transfer_id)
        updated = False
        if previous is not MISS and previous is not None:
            if t.candidates == previous.candidates:
                values = TRANSFERS.values(t, skip=("candidates",))
                updated = self._sql.execute(_UPDATE, values).rowcount == 1
            else:
                values = TRANSFERS.values(t)
                updated = self._sql.execute(_UPDATE_WITH_CANDIDATES, values).rowcount == 1
        if not updated:
            self._sql.execute(_INSERT, TRANSFERS.values(t))
        self._transfers.put(t.transfer_id, t.copy())

    def due(self, now_ms: int, limit: int = 500) -> list[Transfer]:
        """Transfers whose next step is due, the longest due first."""
        rows = self._sql.execute(_DUE, (now_ms, limit)).fetchall()
        return [TRANSFERS.read(row) for row in rows]

    def unfinished(self) -> list[Transfer]:
        """Transfers not yet committed or aborted (what a restart resumes)."""
        return [TRANSFERS.read(row) for row in self._sql.execute(_UNFINISHED).fetchall()]

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
            " detail) VALUES (:transfer_id, (SELECT COALESCE(MAX(seq), 0) + 1"
            " FROM transfer_history WHERE transfer_id = :transfer_id), :at_ms, :from_state,"
            " :to_state, :event, :detail)",
            {
                "transfer_id": transfer_id,
                "at_ms": at_ms,
                "from_state": from_state,
                "to_state": to_state,
                "event": event,
                "detail": detail,
            },
        )

    def history(self, transfer_id: str) -> list[StateChange]:
        return history_of(self._sql, transfer_id)

    # --- quotes ---

    def add_quote(self, transfer_id: str, quote: Quote) -> None:
        self._sql.execute(_ADD_QUOTE, QUOTES.values(quote, transfer_id=transfer_id))

    def quotes(self, transfer_id: str) -> list[Quote]:
        return [QUOTES.read(row) for row in self._sql.execute(_QUOTES_OF, (transfer_id,))]

    # --- legs ---

    def put_leg(self, leg: Leg) -> None:
        """Write a leg (its changes are written with the transfer's, one transaction)."""
        self._sql.execute(_PUT_LEG, LEGS.values(leg))

    def leg(self, leg_id: str) -> Leg | None:
        row = self._sql.execute(_LEG, (leg_id,)).fetchone()
        return None if row is None else LEGS.read(row)

    def legs(self, transfer_id: str) -> list[Leg]:
        """A transfer's legs in the order they are reserved."""
        return [LEGS.read(row) for row in self._sql.execute(_LEGS_OF, (transfer_id,))]
