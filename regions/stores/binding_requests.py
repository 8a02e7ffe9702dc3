"""Binding requests co-payers made here (``bind`` or ``revoke``), awaiting or holding the
directory's answer; one under way is asked again at ``resend_at_ms``."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.reasons import ReasonCode
from regions.stores.bills import BillState
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS binding_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    copayer TEXT NOT NULL,
    binding_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    beneficiary TEXT NOT NULL DEFAULT '',
    beneficiary_region TEXT NOT NULL DEFAULT '',
    relationship TEXT NOT NULL DEFAULT '',
    resend_at_ms INTEGER,
    resends INTEGER NOT NULL DEFAULT 0
);
"""

AFTER_MIGRATION = """
CREATE INDEX IF NOT EXISTS binding_requests_resend_due
    ON binding_requests (resend_at_ms) WHERE resend_at_ms IS NOT NULL;
"""
"""Indexes on columns an older file gains only when migrated."""


@dataclass(frozen=True, slots=True)
class BindingRequest:
    request_id: str
    kind: str
    copayer: str
    binding_id: str
    reply_to: str
    state: BillState
    reason: ReasonCode | None
    detail: str
    fingerprint: str
    beneficiary: str = ""
    """What a ``bind`` request proposed (empty for ``revoke``)."""
    beneficiary_region: str = ""
    relationship: str = ""


BINDING_REQUESTS = Table("binding_requests", BindingRequest)
_SELECT = BINDING_REQUESTS.select("request_id = ?")
_INSERT = BINDING_REQUESTS.insert("resend_at_ms")


class BindingRequests:
    """The ``binding_requests`` table (read from SQLite each time: few and rare)."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def get(self, request_id: str) -> BindingRequest | None:
        row = self._sql.execute(_SELECT, (request_id,)).fetchone()
        return None if row is None else BINDING_REQUESTS.read(row)

    def add(
        self,
        request_id: str,
        kind: str,
        copayer: str,
        binding_id: str,
        reply_to: str,
        fingerprint: str,
        *,
        beneficiary: str = "",
        beneficiary_region: str = "",
        relationship: str = "",
        resend_at_ms: int | None = None,
    ) -> None:
        """``resend_at_ms`` as for ``Bills.add``: cleared when the request is settled."""
        request = BindingRequest(
            request_id,
            kind,
            copayer,
            binding_id,
            reply_to,
            BillState.REQUESTED,
            None,
            "",
            fingerprint,
            beneficiary,
            beneficiary_region,
            relationship,
        )
        self._sql.execute(_INSERT, BINDING_REQUESTS.values(request, resend_at_ms=resend_at_ms))

    def settle(
        self, request_id: str, binding_id: str, reason: ReasonCode | None, detail: str
    ) -> None:
        self._sql.execute(
            "UPDATE binding_requests SET state = 'settled', binding_id = ?, reason = ?,"
            " detail = ?, resend_at_ms = NULL WHERE request_id = ?",
            (binding_id, reason, detail, request_id),
        )

    def due(self, now_ms: int, limit: int = 1000) -> list[tuple[BindingRequest, int]]:
        """Binding requests under way whose re-send time has come, with their re-sends."""
        rows = self._sql.execute(
            "SELECT request_id, resends FROM binding_requests WHERE resend_at_ms <= ?"
            " AND state = 'requested' ORDER BY resend_at_ms, request_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [
            (request, resends) for rid, resends in rows if (request := self.get(rid)) is not None
        ]

    def resent(self, request_id: str, next_at_ms: int) -> None:
        self._sql.execute(
            "UPDATE binding_requests SET resend_at_ms = ?, resends = resends + 1"
            " WHERE request_id = ?",
            (next_at_ms, request_id),
        )
