"""Requests submitted at this region, awaiting or holding their one final outcome.

Three flows share the ``bills`` table and the ``Bill`` record: bills (flow ``copay``,
this region is the payee) and co-payers' wallet transfers and premium payments (this
region is the payer). One still under way carries the time to ask the clearinghouse
again (``resend_at_ms``) until its outcome comes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
-- Requests submitted at this region and awaiting or holding their one final outcome:
-- bills (flow copay, here the payee) and co-payers' wallet transfers and premium
-- payments (here the payer).
CREATE TABLE IF NOT EXISTS bills (
    transfer_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL DEFAULT 'copay',
    beneficiary TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    reply_to TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    paid_fen INTEGER NOT NULL DEFAULT 0,
    own_paid_fen INTEGER NOT NULL DEFAULT 0,
    wallet_paid_fen INTEGER NOT NULL DEFAULT 0,
    aid_requested_fen INTEGER NOT NULL DEFAULT 0,
    payer TEXT NOT NULL DEFAULT '',
    payer_region TEXT NOT NULL DEFAULT '',
    counterparty_region TEXT NOT NULL DEFAULT '',
    year INTEGER NOT NULL DEFAULT 0,
    submitted_at_ms INTEGER NOT NULL,
    settled_at_ms INTEGER,
    resend_at_ms INTEGER,
    resends INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bills_by_payer_day ON bills (payer, flow, submitted_at_ms);
"""

AFTER_MIGRATION = """
CREATE INDEX IF NOT EXISTS bills_resend_due
    ON bills (resend_at_ms) WHERE resend_at_ms IS NOT NULL;
"""
"""Indexes on columns an older file gains only when migrated."""


class BillState(StrEnum):
    REQUESTED = "requested"
    """Aid was asked of the clearinghouse; no final outcome yet."""
    SETTLED = "settled"
    """The final outcome is known (paid in full or part, or refused)."""


@dataclass(frozen=True, slots=True)
class Bill:
    """A request awaiting or holding its final outcome (see the ``bills`` table)."""

    transfer_id: str
    beneficiary: str
    amount_fen: int
    reply_to: str
    state: BillState
    reason: ReasonCode | None
    detail: str
    paid_fen: int
    payer_region: str
    flow: Flow = Flow.COPAY
    own_paid_fen: int = 0
    wallet_paid_fen: int = 0
    aid_requested_fen: int = 0
    payer: str = ""
    counterparty_region: str = ""
    year: int = 0
    submitted_at_ms: int = 0

    @property
    def remaining_fen(self) -> int:
        return self.amount_fen - self.paid_fen - self.own_paid_fen - self.wallet_paid_fen

    def settled(
        self,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        own_paid_fen: int | None,
    ) -> Bill:
        """The bill with its final outcome (``own_paid_fen`` None: unchanged)."""
        return replace(
            self,
            state=BillState.SETTLED,
            paid_fen=paid_fen,
            payer_region=payer_region,
            reason=reason,
            detail=detail,
            own_paid_fen=self.own_paid_fen if own_paid_fen is None else own_paid_fen,
        )


BILLS = Table("bills", Bill)
_SELECT = BILLS.select("transfer_id = ?")
_INSERT = BILLS.insert("resend_at_ms")


class Bills:
    """The ``bills`` table, remembered write-through by transfer id."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._bills: RowCache[str, Bill] = db.row_cache("bills")

    def get(self, transfer_id: str) -> Bill | None:
        return self._bills.fetch(transfer_id, self._read)

    def _read(self, transfer_id: str) -> Bill | None:
        row = self._sql.execute(_SELECT, (transfer_id,)).fetchone()
        return None if row is None else BILLS.read(row)

    def add(
        self,
        transfer_id: str,
        beneficiary: str,
        amount_fen: int,
        reply_to: str,
        at_ms: int,
        *,
        flow: Flow = Flow.COPAY,
        payer: str = "",
        counterparty_region: str = "",
        year: int = 0,
        resend_at_ms: int | None = None,
    ) -> None:
        """``resend_at_ms``: when to ask the clearinghouse again if no outcome came (None:
        the request is settled here, never forwarded); settling clears it."""
        bill = Bill(
            transfer_id,
            beneficiary,
            amount_fen,
            reply_to,
            BillState.REQUESTED,
            None,
            "",
            0,
            "",
            flow,
            payer=payer,
            counterparty_region=counterparty_region,
            year=year,
            submitted_at_ms=at_ms,
        )
        self._sql.execute(_INSERT, BILLS.values(bill, resend_at_ms=resend_at_ms))
        self._bills.put(transfer_id, bill)

    def record_local_payment(
        self, transfer_id: str, *, own_paid_fen: int, wallet_paid_fen: int, aid_requested_fen: int
    ) -> None:
        """What the payee's own account and wallet paid, and what aid is asked for."""
        self._sql.execute(
            "UPDATE bills SET own_paid_fen = ?, wallet_paid_fen = ?, aid_requested_fen = ?"
            " WHERE transfer_id = ?",
            (own_paid_fen, wallet_paid_fen, aid_requested_fen, transfer_id),
        )
        self._bills.revise(
            transfer_id,
            lambda bill: replace(
                bill,
                own_paid_fen=own_paid_fen,
                wallet_paid_fen=wallet_paid_fen,
                aid_requested_fen=aid_requested_fen,
            ),
        )

    def wallet_requests_since(self, payer: str, since_ms: int) -> int:
        """Wallet transfers of a co-payer since a time, not counting refused ones."""
        row = self._sql.execute(
            "SELECT COUNT(*) FROM bills WHERE payer = ? AND flow = 'wallet'"
            " AND submitted_at_ms >= ? AND (state = 'requested' OR reason IS NULL)",
            (payer, since_ms),
        ).fetchone()
        return int(row[0])

    def settle(
        self,
        transfer_id: str,
        *,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        at_ms: int,
        own_paid_fen: int | None = None,
    ) -> None:
        """The final outcome (``own_paid_fen`` None: unchanged); no more re-sends."""
        self._sql.execute(
            "UPDATE bills SET state = 'settled', paid_fen = ?, payer_region = ?, reason = ?,"
            " detail = ?, settled_at_ms = ?, own_paid_fen = COALESCE(?, own_paid_fen),"
            " resend_at_ms = NULL WHERE transfer_id = ?",
            (paid_fen, payer_region, reason, detail, at_ms, own_paid_fen, transfer_id),
        )
        self._bills.revise(
            transfer_id,
            lambda bill: bill.settled(paid_fen, payer_region, reason, detail, own_paid_fen),
        )

    def due(self, now_ms: int, limit: int = 1000) -> list[tuple[Bill, int]]:
        """Requests still under way whose re-send time has come, with their re-sends so far."""
        rows = self._sql.execute(
            "SELECT transfer_id, resends FROM bills WHERE resend_at_ms <= ?"
            " AND state = 'requested' ORDER BY resend_at_ms, transfer_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [(bill, resends) for tid, resends in rows if (bill := self.get(tid)) is not None]

    def resent(self, transfer_id: str, next_at_ms: int) -> None:
        """A request was sent again; the next time is ``next_at_ms``."""
        self._sql.execute(
            "UPDATE bills SET resend_at_ms = ?, resends = resends + 1 WHERE transfer_id = ?",
            (next_at_ms, transfer_id),
        )
