"""Holds: what this region reserved on a payer's account for a transfer, and how it ended.

A hold's states and their transitions are ``regions.hold_states``; this is their record."""

from __future__ import annotations

from dataclasses import dataclass, replace

from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow
from regions.hold_states import HoldState
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
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
    resolved_at_ms INTEGER,
    from_wallet INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS holds_pending_by_expiry
    ON holds (expires_at_ms) WHERE state = 'pending';
"""

ADDED_COLUMNS = ("from_wallet INTEGER NOT NULL DEFAULT 0",)
"""Columns a file written before care away from home lacks (added on opening)."""


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
    flow: Flow = Flow.COPAY
    from_wallet: bool = False
    """The hold is on the payer's wallet (a leg of a bill away from home), not the
    personal account."""


HOLDS = Table("holds", Hold)
_SELECT = HOLDS.select("transfer_id = ?")
_INSERT = HOLDS.insert("created_at_ms", "resolved_at_ms")


class Holds:
    """The ``holds`` table, remembered write-through by transfer id."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._holds: RowCache[str, Hold] = db.row_cache("holds")

    def get(self, transfer_id: str) -> Hold | None:
        return self._holds.fetch(transfer_id, self._read)

    def _read(self, transfer_id: str) -> Hold | None:
        row = self._sql.execute(_SELECT, (transfer_id,)).fetchone()
        return None if row is None else HOLDS.read(row)

    def add(
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
        flow: Flow = Flow.COPAY,
        from_wallet: bool = False,
    ) -> None:
        """A hold as it begins (``at_ms``); one that begins resolved is resolved then."""
        hold = Hold(
            transfer_id,
            payer,
            payee_region,
            requested_fen,
            held_fen,
            state,
            reason,
            expires_at_ms,
            flow,
            from_wallet,
        )
        resolved_at_ms = None if state in (HoldState.PENDING, HoldState.PREPARED) else at_ms
        self._sql.execute(
            _INSERT, HOLDS.values(hold, created_at_ms=at_ms, resolved_at_ms=resolved_at_ms)
        )
        self._holds.put(transfer_id, hold)

    def set_amount(self, transfer_id: str, held_fen: int) -> None:
        self._sql.execute(
            "UPDATE holds SET held_fen = ? WHERE transfer_id = ?", (held_fen, transfer_id)
        )
        self._holds.forget(transfer_id)

    def resolve(
        self, transfer_id: str, state: HoldState, reason: ReasonCode | None, at_ms: int
    ) -> None:
        self._sql.execute(
            "UPDATE holds SET state = ?, reason = ?, resolved_at_ms = ? WHERE transfer_id = ?",
            (state, reason, at_ms, transfer_id),
        )
        self._holds.revise(transfer_id, lambda hold: replace(hold, state=state, reason=reason))

    def expired(self, now_ms: int, limit: int = 1000) -> list[Hold]:
        """Pending holds whose time is up, the longest expired first."""
        rows = self._sql.execute(
            "SELECT transfer_id FROM holds WHERE state = 'pending' AND expires_at_ms <= ?"
            " ORDER BY expires_at_ms LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [hold for (tid,) in rows if (hold := self.get(tid)) is not None]

    def posted_between(self, since_ms: int, until_ms: int) -> list[tuple[str, str, int]]:
        """(transfer_id, payee_region, amount) of holds posted in [since, until)."""
        rows = self._sql.execute(
            "SELECT transfer_id, payee_region, held_fen FROM holds WHERE state = 'posted'"
            " AND resolved_at_ms >= ? AND resolved_at_ms < ?",
            (since_ms, until_ms),
        ).fetchall()
        return [(tid, payee_region, held_fen) for tid, payee_region, held_fen in rows]

    def count_by_state(self) -> dict[str, int]:
        return {
            state: count
            for state, count in self._sql.execute(
                "SELECT state, COUNT(*) FROM holds GROUP BY state"
            )
        }
