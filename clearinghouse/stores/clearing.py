"""Clearing windows: each window's entries, the regions' reconciliations of it, and the
disagreements found and repaired."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.vocabulary import Flow
from storage.cache import MISS, RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
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
"""


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
class Reconciliation:
    """A region's latest check of a window against its own records."""

    window: int
    region: str
    disagreements: int
    paid_fen: int
    received_fen: int
    at_ms: int


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


WINDOWS = Table("windows", Window)
ENTRIES = Table("clearing_entries", ClearingEntry)
RECONCILIATIONS = Table("reconciliations", Reconciliation)
DISAGREEMENTS = Table("disagreements", DisagreementRecord)
_OPEN_WINDOW = WINDOWS.select("state = 'open'")
_WINDOW = WINDOWS.select("window = ?")
_CLOSED_BY = WINDOWS.select("close_request_id = ?")
_LATEST_CLOSED = WINDOWS.select("state = 'closed'", order_by="window DESC", limit="1")
_ADD_ENTRY = ENTRIES.insert(verb="INSERT OR IGNORE")
_ENTRY = ENTRIES.select("transfer_id = ?")
_ENTRIES_OF = ENTRIES.select("window = ?", order_by="transfer_id")
_PUT_RECONCILIATION = RECONCILIATIONS.insert(verb="INSERT OR REPLACE")
_PUT_DISAGREEMENT = DISAGREEMENTS.insert("at_ms", verb="INSERT OR REPLACE")
_DISAGREEMENTS_OF = DISAGREEMENTS.select("window = ?", order_by="region, transfer_id")


class Clearing:
    """The ``windows``, ``clearing_entries``, ``reconciliations`` and ``disagreements``
    tables; the open window is remembered until it closes."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._open_window: RowCache[str, Window] = db.row_cache("open_window")

    # --- windows ---

    def open_window(self, now_ms: int) -> Window:
        """The open clearing window, opening window 1 on first use."""
        cached = self._open_window.get("open")
        if cached is not MISS and cached is not None:
            return cached
        window = self._read_open_window(now_ms)
        self._open_window.put("open", window)
        return window

    def _read_open_window(self, now_ms: int) -> Window:
        row = self._sql.execute(_OPEN_WINDOW).fetchone()
        if row is not None:
            return WINDOWS.read(row)
        last = self._sql.execute("SELECT COALESCE(MAX(window), 0) FROM windows").fetchone()[0]
        window = Window(last + 1, "open", now_ms, None, None)
        self._sql.execute(
            "INSERT INTO windows (window, state, opened_at_ms) VALUES (?, 'open', ?)",
            (window.window, now_ms),
        )
        return window

    def window(self, number: int) -> Window | None:
        return self._one_window(_WINDOW, number)

    def closed_by(self, request_id: str) -> Window | None:
        """The window the close request ``request_id`` closed, if it did."""
        return self._one_window(_CLOSED_BY, request_id)

    def latest_closed(self) -> Window | None:
        row = self._sql.execute(_LATEST_CLOSED).fetchone()
        return None if row is None else WINDOWS.read(row)

    def _one_window(self, select: str, key: object) -> Window | None:
        row = self._sql.execute(select, (key,)).fetchone()
        return None if row is None else WINDOWS.read(row)

    def close_window(self, number: int, request_id: str, now_ms: int) -> None:
        self._open_window.clear()
        self._sql.execute(
            "UPDATE windows SET state = 'closed', closed_at_ms = ?, close_request_id = ?"
            " WHERE window = ?",
            (now_ms, request_id, number),
        )

    # --- entries ---

    def add_entry(self, entry: ClearingEntry) -> None:
        self._sql.execute(_ADD_ENTRY, ENTRIES.values(entry))

    def entry(self, transfer_id: str) -> ClearingEntry | None:
        row = self._sql.execute(_ENTRY, (transfer_id,)).fetchone()
        return None if row is None else ENTRIES.read(row)

    def entries(self, window: int) -> list[ClearingEntry]:
        return [ENTRIES.read(row) for row in self._sql.execute(_ENTRIES_OF, (window,)).fetchall()]

    # --- reconciliations and disagreements ---

    def put_reconciliation(
        self, window: int, region: str, disagreements: int, paid: int, received: int, at_ms: int
    ) -> None:
        reconciliation = Reconciliation(window, region, disagreements, paid, received, at_ms)
        self._sql.execute(_PUT_RECONCILIATION, RECONCILIATIONS.values(reconciliation))

    def reconciliations(self, window: int) -> dict[str, int]:
        """Region -> disagreements it reported in its latest check of the window."""
        rows = self._sql.execute(
            "SELECT region, disagreements FROM reconciliations WHERE window = ?", (window,)
        )
        return {region: disagreements for region, disagreements in rows.fetchall()}

    def put_disagreement(self, d: DisagreementRecord, at_ms: int) -> None:
        self._sql.execute(_PUT_DISAGREEMENT, DISAGREEMENTS.values(d, at_ms=at_ms))

    def disagreements(self, window: int) -> list[DisagreementRecord]:
        rows = self._sql.execute(_DISAGREEMENTS_OF, (window,)).fetchall()
        return [DISAGREEMENTS.read(row) for row in rows]

    def mark_repaired(self, window: int, region: str, at_ms: int) -> int:
        """Repairing disagreements of the region's window are repaired; how many."""
        cursor = self._sql.execute(
            "UPDATE disagreements SET state = 'repaired', at_ms = ?"
            " WHERE window = ? AND region = ? AND state = 'repairing'",
            (at_ms, window, region),
        )
        return cursor.rowcount
