"""Premiums: a person's yearly resident premium, earmarked while a transfer pays it."""

from __future__ import annotations

from dataclasses import dataclass

from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS premiums (
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (psn_no, year)
);
"""


@dataclass(frozen=True, slots=True)
class Premium:
    psn_no: str
    year: int
    transfer_id: str
    state: str
    """``pending`` (earmarked for a transfer under way) or ``paid``."""
    amount_fen: int


PREMIUMS = Table("premiums", Premium)
_SELECT = PREMIUMS.select("psn_no = ? AND year = ?")
_PUT = PREMIUMS.insert("at_ms", verb="INSERT OR REPLACE")


class Premiums:
    """The ``premiums`` table, one row per person and year."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def get(self, psn_no: str, year: int) -> Premium | None:
        row = self._sql.execute(_SELECT, (psn_no, year)).fetchone()
        return None if row is None else PREMIUMS.read(row)

    def put(
        self, psn_no: str, year: int, transfer_id: str, state: str, amount_fen: int, at_ms: int
    ) -> None:
        premium = Premium(psn_no, year, transfer_id, state, amount_fen)
        self._sql.execute(_PUT, PREMIUMS.values(premium, at_ms=at_ms))

    def release(self, transfer_id: str) -> None:
        """Free the earmark of a transfer that did not pay (a paid premium stays)."""
        self._sql.execute(
            "DELETE FROM premiums WHERE transfer_id = ? AND state = 'pending'", (transfer_id,)
        )
