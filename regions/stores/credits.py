"""Credits: co-payments this region received as the payee, one per transfer."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.vocabulary import Flow
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS credits (
    transfer_id TEXT PRIMARY KEY,
    payer_region TEXT NOT NULL,
    flow TEXT NOT NULL DEFAULT 'copay',
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Credit:
    transfer_id: str
    payer_region: str
    flow: Flow
    amount_fen: int
    at_ms: int


CREDITS = Table("credits", Credit)
_INSERT = CREDITS.insert()


class Credits:
    """The ``credits`` table; the amount of each is remembered write-through."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._amounts: RowCache[str, int] = db.row_cache("credits")

    def amount(self, transfer_id: str) -> int | None:
        """What was credited for the transfer (None: nothing yet)."""
        return self._amounts.fetch(transfer_id, self._read_amount)

    def _read_amount(self, transfer_id: str) -> int | None:
        row = self._sql.execute(
            "SELECT amount_fen FROM credits WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def add(
        self,
        transfer_id: str,
        payer_region: str,
        amount_fen: int,
        at_ms: int,
        flow: Flow = Flow.COPAY,
    ) -> None:
        credit = Credit(transfer_id, payer_region, flow, amount_fen, at_ms)
        self._sql.execute(_INSERT, CREDITS.values(credit))
        self._amounts.put(transfer_id, amount_fen)

    def between(self, since_ms: int, until_ms: int) -> list[tuple[str, str, int]]:
        """(transfer_id, payer_region, amount) of credits recorded in [since, until)."""
        rows = self._sql.execute(
            "SELECT transfer_id, payer_region, amount_fen FROM credits"
            " WHERE at_ms >= ? AND at_ms < ?",
            (since_ms, until_ms),
        ).fetchall()
        return [(tid, payer_region, amount) for tid, payer_region, amount in rows]
