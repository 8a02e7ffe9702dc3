"""Registrations of care away from home (异地就医备案) this region's insured asked for, and
their revocations, with a row per state change (``away_request_history``); one under way
is asked again at ``resend_at_ms``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.reasons import ReasonCode
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS away_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    registration_id TEXT NOT NULL,
    care_region TEXT NOT NULL DEFAULT '',
    from_ms INTEGER NOT NULL DEFAULT 0,
    until_ms INTEGER NOT NULL DEFAULT 0,
    reply_to TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    resend_at_ms INTEGER,
    resends INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS away_requests_resend_due
    ON away_requests (resend_at_ms) WHERE resend_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS away_request_history (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (request_id, seq)
);
"""

REGISTER, REVOKE = "register", "revoke"
"""The kinds of request."""


class AwayRequestState(StrEnum):
    REQUESTED = "requested"
    """Identity checked; sent to the national directory, no answer yet."""
    RECORDED = "recorded"
    """The directory recorded the registration (or, for a revocation, revoked it)."""
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AwayRequest:
    request_id: str
    kind: str
    beneficiary: str
    registration_id: str
    care_region: str
    from_ms: int
    until_ms: int
    reply_to: str
    state: AwayRequestState
    reason: ReasonCode | None = None
    detail: str = ""


AWAY_REQUESTS = Table("away_requests", AwayRequest)
_SELECT = AWAY_REQUESTS.select("request_id = ?")
_INSERT = AWAY_REQUESTS.insert("resend_at_ms")


class AwayRequests:
    """The ``away_requests`` table and its history (read from SQLite each time: rare)."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def get(self, request_id: str) -> AwayRequest | None:
        row = self._sql.execute(_SELECT, (request_id,)).fetchone()
        return None if row is None else AWAY_REQUESTS.read(row)

    def add(self, request: AwayRequest, at_ms: int, resend_at_ms: int | None = None) -> None:
        """``resend_at_ms`` as for ``Bills.add``: cleared when the request is settled."""
        self._sql.execute(_INSERT, AWAY_REQUESTS.values(request, resend_at_ms=resend_at_ms))
        self._history(request.request_id, at_ms, request.state, request.reason, request.detail)

    def settle(
        self,
        request_id: str,
        state: AwayRequestState,
        reason: ReasonCode | None,
        detail: str,
        at_ms: int,
    ) -> None:
        self._sql.execute(
            "UPDATE away_requests SET state = ?, reason = ?, detail = ?, resend_at_ms = NULL"
            " WHERE request_id = ?",
            (state, reason, detail, request_id),
        )
        self._history(request_id, at_ms, state, reason, detail)

    def due(self, now_ms: int, limit: int = 1000) -> list[tuple[AwayRequest, int]]:
        """Requests under way whose re-send time has come, with their re-sends so far."""
        rows = self._sql.execute(
            "SELECT request_id, resends FROM away_requests WHERE resend_at_ms <= ?"
            " AND state = 'requested' ORDER BY resend_at_ms, request_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [(r, resends) for rid, resends in rows if (r := self.get(rid)) is not None]

    def resent(self, request_id: str, next_at_ms: int) -> None:
        self._sql.execute(
            "UPDATE away_requests SET resend_at_ms = ?, resends = resends + 1 WHERE request_id = ?",
            (next_at_ms, request_id),
        )

    def _history(
        self,
        request_id: str,
        at_ms: int,
        state: AwayRequestState,
        reason: ReasonCode | None,
        detail: str,
    ) -> None:
        self._sql.execute(
            "INSERT INTO away_request_history (request_id, seq, at_ms, state, reason, detail)"
            " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM away_request_history"
            " WHERE request_id = ?), ?, ?, ?, ?)",
            (request_id, request_id, at_ms, state, reason, detail),
        )

    def history(self, request_id: str) -> list[tuple[int, str, str | None]]:
        """(at_ms, state, reason) of each state change of a request, in order."""
        rows = self._sql.execute(
            "SELECT at_ms, state, reason FROM away_request_history WHERE request_id = ?"
            " ORDER BY seq",
            (request_id,),
        ).fetchall()
        return [(at, state, reason) for at, state, reason in rows]
