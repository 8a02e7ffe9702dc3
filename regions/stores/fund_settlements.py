"""Fund settlements: each closed window's settlement as this region was told it and
booked it against its fund, with a row per state change."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.settlement_states import SettlementEvent, SettlementState
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS fund_settlements (
    window INTEGER PRIMARY KEY,
    net_fen INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    top_up_fen INTEGER NOT NULL,
    advance_fen INTEGER NOT NULL,
    state TEXT NOT NULL,
    instructed_at_ms INTEGER NOT NULL,
    booked_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS fund_settlement_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    window INTEGER NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class FundSettlementRecord:
    window: int
    net_fen: int
    """Received less paid in the window, as the clearinghouse issued it."""
    lines: int
    top_up_fen: int
    """What this region's fund paid into its advance (negative: took back)."""
    advance_fen: int
    """This region's advance at the clearinghouse after the close."""
    state: SettlementState
    instructed_at_ms: int
    booked_at_ms: int | None


FUND_SETTLEMENTS = Table("fund_settlements", FundSettlementRecord)
_ADD = FUND_SETTLEMENTS.insert(verb="INSERT OR IGNORE")
_ONE = FUND_SETTLEMENTS.select("window = ?")


class FundSettlements:
    """The ``fund_settlements`` and ``fund_settlement_changes`` tables."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def get(self, window: int) -> FundSettlementRecord | None:
        row = self._sql.execute(_ONE, (window,)).fetchone()
        return None if row is None else FUND_SETTLEMENTS.read(row)

    def add(self, record: FundSettlementRecord, event: SettlementEvent) -> None:
        self._sql.execute(_ADD, FUND_SETTLEMENTS.values(record))
        self.add_change(record.window, event, record.state, record.instructed_at_ms)

    def mark_booked(self, window: int, event: SettlementEvent, at_ms: int) -> None:
        self._sql.execute(
            "UPDATE fund_settlements SET state = 'booked', booked_at_ms = ? WHERE window = ?",
            (at_ms, window),
        )
        self.add_change(window, event, SettlementState.BOOKED, at_ms)

    def add_change(
        self, window: int, event: SettlementEvent, state: SettlementState, at_ms: int
    ) -> None:
        self._sql.execute(
            "INSERT INTO fund_settlement_changes (window, event, state, at_ms) VALUES (?, ?, ?, ?)",
            (window, event, state, at_ms),
        )
