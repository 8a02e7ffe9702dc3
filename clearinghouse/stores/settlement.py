"""Settlement between regional funds: each region's settlement account (its advance,
预付金), each window's settlement of each region, and a row per state change."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.settlement_states import SettlementEvent, SettlementState
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS settlement_accounts (
    region TEXT PRIMARY KEY,
    advance_fen INTEGER NOT NULL,
    window INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    window INTEGER NOT NULL,
    region TEXT NOT NULL,
    paid_fen INTEGER NOT NULL,
    received_fen INTEGER NOT NULL,
    net_fen INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    advance_before_fen INTEGER NOT NULL,
    target_fen INTEGER NOT NULL,
    top_up_fen INTEGER NOT NULL,
    advance_after_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    booked_at_ms INTEGER,
    PRIMARY KEY (window, region)
);
CREATE TABLE IF NOT EXISTS settlement_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    window INTEGER NOT NULL,
    region TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class RegionSettlement:
    """One region's settlement of one closed window, as the clearinghouse issued it.

    ``advance_after_fen = advance_before_fen + net_fen + top_up_fen``: the advance pays
    what the region owes and takes what it is owed; the top-up (negative: a return to
    the region's fund) brings it to ``target_fen``."""

    window: int
    region: str
    paid_fen: int
    received_fen: int
    net_fen: int
    lines: int
    advance_before_fen: int
    target_fen: int
    top_up_fen: int
    advance_after_fen: int
    state: SettlementState
    issued_at_ms: int
    booked_at_ms: int | None


SETTLEMENTS = Table("settlements", RegionSettlement)
_ADD = SETTLEMENTS.insert(verb="INSERT OR IGNORE")
_OF_WINDOW = SETTLEMENTS.select("window = ?", order_by="region")
_ONE = SETTLEMENTS.select("window = ? AND region = ?")
_ISSUED = SETTLEMENTS.select("state = 'issued'", order_by="window, region")


class Settlements:
    """The ``settlement_accounts``, ``settlements`` and ``settlement_changes`` tables."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def advance(self, region: str) -> int:
        """The region's advance now (0 before its first settlement)."""
        row = self._sql.execute(
            "SELECT advance_fen FROM settlement_accounts WHERE region = ?", (region,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def add(self, s: RegionSettlement) -> None:
        """Record an issued settlement and move the region's account to its new advance."""
        self._sql.execute(_ADD, SETTLEMENTS.values(s))
        self._sql.execute(
            "INSERT INTO settlement_accounts (region, advance_fen, window, updated_at_ms)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (region) DO UPDATE SET"
            " advance_fen = excluded.advance_fen, window = excluded.window,"
            " updated_at_ms = excluded.updated_at_ms",
            (s.region, s.advance_after_fen, s.window, s.issued_at_ms),
        )

    def get(self, window: int, region: str) -> RegionSettlement | None:
        row = self._sql.execute(_ONE, (window, region)).fetchone()
        return None if row is None else SETTLEMENTS.read(row)

    def of_window(self, window: int) -> list[RegionSettlement]:
        return [SETTLEMENTS.read(r) for r in self._sql.execute(_OF_WINDOW, (window,)).fetchall()]

    def issued(self) -> list[RegionSettlement]:
        """Settlements not yet booked by their region."""
        return [SETTLEMENTS.read(r) for r in self._sql.execute(_ISSUED).fetchall()]

    def mark_booked(self, window: int, region: str, at_ms: int) -> None:
        self._sql.execute(
            "UPDATE settlements SET state = 'booked', booked_at_ms = ?"
            " WHERE window = ? AND region = ?",
            (at_ms, window, region),
        )

    def add_change(
        self,
        window: int,
        region: str,
        event: SettlementEvent,
        state: SettlementState,
        at_ms: int,
    ) -> None:
        self._sql.execute(
            "INSERT INTO settlement_changes (window, region, event, state, at_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (window, region, event, state, at_ms),
        )
