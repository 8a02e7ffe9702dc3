"""What a region remembers: persons, holds, bills and credits, beside its books."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from contracts.policy import Policy
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow, Insurance, PaymentOrder, Scope
from regions.books import Books
from regions.hold_states import HoldState as HoldState
from storage.cache import MISS, RowCache
from storage.sqlite import Database, Synchronous, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    psn_no TEXT PRIMARY KEY,
    insurance TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '',
    enrolled_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
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
    resolved_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS holds_pending_by_expiry
    ON holds (expires_at_ms) WHERE state = 'pending';
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
CREATE TABLE IF NOT EXISTS premiums (
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (psn_no, year)
);
CREATE TABLE IF NOT EXISTS settlement_lines (
    window INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    payer_region TEXT NOT NULL,
    payee_region TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (window, transfer_id)
);
CREATE TABLE IF NOT EXISTS settlement_reports (
    window INTEGER PRIMARY KEY,
    paid_fen INTEGER NOT NULL,
    received_fen INTEGER NOT NULL,
    net_fen INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER NOT NULL,
    disagreements INTEGER,
    reconciled_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS credits (
    transfer_id TEXT PRIMARY KEY,
    payer_region TEXT NOT NULL,
    flow TEXT NOT NULL DEFAULT 'copay',
    amount_fen INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
"""

SCHEMA_VERSION = 1
"""The layout ``SCHEMA`` writes (SQLite's ``user_version``). 1: a released hold says how
(``expired``, ``released_by_abort``, ``aborted_before_reserve``; 0 said ``voided``), and
a request under way (bill or binding request) carries its re-send timer (``resend_at_ms``,
``resends``), and a binding request what it proposed."""

AFTER_MIGRATION = """
CREATE INDEX IF NOT EXISTS bills_resend_due
    ON bills (resend_at_ms) WHERE resend_at_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS binding_requests_resend_due
    ON binding_requests (resend_at_ms) WHERE resend_at_ms IS NOT NULL;
"""


class BillState(StrEnum):
    REQUESTED = "requested"
    """Aid was asked of the clearinghouse; no final outcome yet."""
    SETTLED = "settled"
    """The final outcome is known (paid in full or part, or refused)."""


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


@dataclass(frozen=True, slots=True)
class Premium:
    psn_no: str
    year: int
    transfer_id: str
    state: str
    """``pending`` (earmarked for a transfer under way) or ``paid``."""
    amount_fen: int


@dataclass(frozen=True, slots=True)
class SettlementReportRecord:
    window: int
    paid_fen: int
    received_fen: int
    net_fen: int
    lines: int
    opened_at_ms: int
    closed_at_ms: int
    disagreements: int | None


@dataclass(frozen=True, slots=True)
class SettlementLineRecord:
    window: int
    transfer_id: str
    flow: Flow
    payer_region: str
    payee_region: str
    amount_fen: int


def person_account(psn_no: str) -> str:
    return f"psn:{psn_no}"


def interregion_account(region: str) -> str:
    return f"interregion:{region}"


def wallet_account(psn_no: str) -> str:
    return f"wallet:{psn_no}"


OPENING_FUND = "fund:opening"
BILLS_PAID = "bills:paid"
PREMIUMS_PAID = "premiums:paid"


def _reason(value: str | None) -> ReasonCode | None:
    return None if value is None else ReasonCode(value)


class RegionStore:
    """The SQLite file of one region: its books plus the records its handlers need."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        self._migrate()
        db.executescript(AFTER_MIGRATION)
        self.books = Books(db)
        # Write-through caches (storage.cache) of the rows every step reads again.
        self._bills: RowCache[str, Bill] = db.row_cache("bills")
        self._holds: RowCache[str, Hold] = db.row_cache("holds")
        self._insurance: RowCache[str, Insurance] = db.row_cache("persons")
        self._credits: RowCache[str, int] = db.row_cache("credits")
        self._policy: RowCache[str, Policy] = db.row_cache("policy")
        self._reports: RowCache[int, SettlementReportRecord] = db.row_cache("reports")
        with db.transaction():
            self.books.open_account(OPENING_FUND, no_overdraft=False)
            self.books.open_account(BILLS_PAID, no_overdraft=False)
            self.books.open_account(PREMIUMS_PAID, no_overdraft=False)

    @classmethod
    def open(
        cls, path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
    ) -> RegionStore:
        """``cached=False`` for a reader while the region's service writes the file."""
        return cls(open_database(path, synchronous=synchronous, cached=cached))

    @property
    def _sql(self) -> sqlite3.Connection:
        return self.db.connection

    def _migrate(self) -> None:
        """Bring a file an older version wrote up to ``SCHEMA_VERSION`` (once)."""
        (version,) = self._sql.execute("PRAGMA user_version").fetchone()
        if version >= SCHEMA_VERSION:
            return
        with self.db.transaction():
            columns = {row[1] for row in self._sql.execute("PRAGMA table_info(bills)")}
            if "resend_at_ms" not in columns:
                self._sql.execute("ALTER TABLE bills ADD COLUMN resend_at_ms INTEGER")
                self._sql.execute("ALTER TABLE bills ADD COLUMN resends INTEGER NOT NULL DEFAULT 0")
                # Requests under way when the old version stopped: ask again at once.
                self._sql.execute("UPDATE bills SET resend_at_ms = 0 WHERE state = 'requested'")
            columns = {row[1] for row in self._sql.execute("PRAGMA table_info(binding_requests)")}
            if "resend_at_ms" not in columns:
                for column in (
                    "beneficiary TEXT NOT NULL DEFAULT ''",
                    "beneficiary_region TEXT NOT NULL DEFAULT ''",
                    "relationship TEXT NOT NULL DEFAULT ''",
                    "resend_at_ms INTEGER",
                    "resends INTEGER NOT NULL DEFAULT 0",
                ):
                    self._sql.execute(f"ALTER TABLE binding_requests ADD COLUMN {column}")
                # Only a revocation can be asked for again: what an old proposal proposed
                # was not kept apart from its fingerprint.
                self._sql.execute(
                    "UPDATE binding_requests SET resend_at_ms = 0"
                    " WHERE state = 'requested' AND kind = 'revoke'"
                )
            self._sql.execute(
                "UPDATE holds SET state = CASE WHEN payer IS NULL THEN ?"
                " WHEN reason = ? THEN ? ELSE ? END WHERE state = 'voided'",
                (
                    HoldState.ABORTED_BEFORE_RESERVE.value,
                    ReasonCode.HOLD_EXPIRED.value,
                    HoldState.EXPIRED.value,
                    HoldState.RELEASED_BY_ABORT.value,
                ),
            )
            self._sql.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- persons ---

    def insurance_of(self, psn_no: str) -> Insurance | None:
        cached = self._insurance.get(psn_no)
        if cached is not MISS:
            return cached
        row = self._sql.execute(
            "SELECT insurance FROM persons WHERE psn_no = ?", (psn_no,)
        ).fetchone()
        insurance = None if row is None else Insurance(row[0])
        self._insurance.put(psn_no, insurance)
        return insurance

    def add_person(self, psn_no: str, insurance: Insurance, at_ms: int, secret: str = "") -> None:
        self._sql.execute(
            "INSERT INTO persons (psn_no, insurance, secret, enrolled_at_ms) VALUES (?, ?, ?, ?)",
            (psn_no, insurance.value, secret, at_ms),
        )
        self._insurance.put(psn_no, insurance)

    def set_insurance(self, psn_no: str, insurance: Insurance) -> None:
        self._sql.execute(
            "UPDATE persons SET insurance = ? WHERE psn_no = ?", (insurance.value, psn_no)
        )
        self._insurance.forget(psn_no)

    def secret_matches(self, psn_no: str, secret: str) -> bool:
        """The simulated identity check (face or password in real life)."""
        row = self._sql.execute("SELECT secret FROM persons WHERE psn_no = ?", (psn_no,)).fetchone()
        return row is not None and row[0] == secret

    # --- policy ---

    def policy(self) -> Policy:
        """The policy the clearinghouse registered for this region (defaults until then)."""
        cached = self._policy.get("policy")
        if cached is not MISS and cached is not None:
            return cached
        policy = self._read_policy()
        self._policy.put("policy", policy)
        return policy

    def _read_policy(self) -> Policy:
        values = dict(self._sql.execute("SELECT key, value FROM settings").fetchall())
        default = Policy()
        if "scope" not in values:
            return default
        return Policy(
            scope=Scope(values["scope"]),
            payment_order=PaymentOrder(values["payment_order"]),
            wallet_enabled=values["wallet_enabled"] == "1",
            wallet_max_per_transfer_fen=int(values["wallet_max_per_transfer_fen"]),
            wallet_max_transfers_per_day=int(values["wallet_max_transfers_per_day"]),
            resident_premium_fen=int(values["resident_premium_fen"]),
        )

    def set_policy(self, policy: Policy, enabled: bool) -> None:
        values = {
            "scope": policy.scope.value,
            "payment_order": policy.payment_order.value,
            "wallet_enabled": "1" if policy.wallet_enabled else "0",
            "wallet_max_per_transfer_fen": str(policy.wallet_max_per_transfer_fen),
            "wallet_max_transfers_per_day": str(policy.wallet_max_transfers_per_day),
            "resident_premium_fen": str(policy.resident_premium_fen),
            "enabled": "1" if enabled else "0",
        }
        self._sql.executemany(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", values.items()
        )
        self._policy.clear()

    def person_count(self) -> int:
        return int(self._sql.execute("SELECT COUNT(*) FROM persons").fetchone()[0])

    # --- holds ---

    def hold(self, transfer_id: str) -> Hold | None:
        return self._holds.fetch(transfer_id, self._read_hold)

    def _read_hold(self, transfer_id: str) -> Hold | None:
        row = self._sql.execute(
            "SELECT transfer_id, payer, payee_region, requested_fen, held_fen, state, reason,"
            " expires_at_ms, flow FROM holds WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        if row is None:
            return None
        return Hold(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            HoldState(row[5]),
            _reason(row[6]),
            row[7],
            Flow(row[8]),
        )

    def add_hold(
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
    ) -> None:
        self._sql.execute(
            "INSERT INTO holds (transfer_id, payer, payee_region, requested_fen, held_fen, state,"
            " reason, expires_at_ms, created_at_ms, resolved_at_ms, flow)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                transfer_id,
                payer,
                payee_region,
                requested_fen,
                held_fen,
                state.value,
                None if reason is None else reason.value,
                expires_at_ms,
                at_ms,
                None if state is HoldState.PENDING else at_ms,
                flow,
            ),
        )
        self._holds.put(
            transfer_id,
            Hold(
                transfer_id,
                payer,
                payee_region,
                requested_fen,
                held_fen,
                state,
                reason,
                expires_at_ms,
                flow,
            ),
        )

    def set_hold_amount(self, transfer_id: str, held_fen: int) -> None:
        self._sql.execute(
            "UPDATE holds SET held_fen = ? WHERE transfer_id = ?", (held_fen, transfer_id)
        )
        self._holds.forget(transfer_id)

    def posted_holds_between(self, since_ms: int, until_ms: int) -> list[tuple[str, str, int]]:
        """(transfer_id, payee_region, amount) of holds posted in [since, until)."""
        rows = self._sql.execute(
            "SELECT transfer_id, payee_region, held_fen FROM holds WHERE state = 'posted'"
            " AND resolved_at_ms >= ? AND resolved_at_ms < ?",
            (since_ms, until_ms),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def resolve_hold(
        self, transfer_id: str, state: HoldState, reason: ReasonCode | None, at_ms: int
    ) -> None:
        self._sql.execute(
            "UPDATE holds SET state = ?, reason = ?, resolved_at_ms = ? WHERE transfer_id = ?",
            (state.value, None if reason is None else reason.value, at_ms, transfer_id),
        )
        self._holds.revise(transfer_id, lambda hold: replace(hold, state=state, reason=reason))

    def expired_holds(self, now_ms: int, limit: int = 1000) -> list[Hold]:
        rows = self._sql.execute(
            "SELECT transfer_id FROM holds WHERE state = 'pending' AND expires_at_ms <= ?"
            " ORDER BY expires_at_ms LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [hold for (tid,) in rows if (hold := self.hold(tid)) is not None]

    def holds_by_state(self) -> dict[str, int]:
        return {
            state: count
            for state, count in self._sql.execute(
                "SELECT state, COUNT(*) FROM holds GROUP BY state"
            )
        }

    # --- bills ---

    def bill(self, transfer_id: str) -> Bill | None:
        return self._bills.fetch(transfer_id, self._read_bill)

    def _read_bill(self, transfer_id: str) -> Bill | None:
        row = self._sql.execute(
            "SELECT transfer_id, beneficiary, amount_fen, reply_to, state, reason, detail,"
            " paid_fen, payer_region, flow, own_paid_fen, wallet_paid_fen, aid_requested_fen,"
            " payer, counterparty_region, year, submitted_at_ms FROM bills WHERE transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        if row is None:
            return None
        return Bill(
            row[0],
            row[1],
            row[2],
            row[3],
            BillState(row[4]),
            _reason(row[5]),
            row[6],
            row[7],
            row[8],
            Flow(row[9]),
            row[10],
            row[11],
            row[12],
            row[13],
            row[14],
            row[15],
            row[16],
        )

    def add_bill(
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
        self._sql.execute(
            "INSERT INTO bills (transfer_id, beneficiary, amount_fen, reply_to, state,"
            " submitted_at_ms, flow, payer, counterparty_region, year, resend_at_ms)"
            " VALUES (?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?, ?)",
            (
                transfer_id,
                beneficiary,
                amount_fen,
                reply_to,
                at_ms,
                flow,
                payer,
                counterparty_region,
                year,
                resend_at_ms,
            ),
        )
        self._bills.put(
            transfer_id,
            Bill(
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
            ),
        )

    def record_local_payment(
        self, transfer_id: str, *, own_paid_fen: int, wallet_paid_fen: int, aid_requested_fen: int
    ) -> None:
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

    def settle_bill(
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
        self._sql.execute(
            "UPDATE bills SET state = 'settled', paid_fen = ?, payer_region = ?, reason = ?,"
            " detail = ?, settled_at_ms = ?, own_paid_fen = COALESCE(?, own_paid_fen),"
            " resend_at_ms = NULL WHERE transfer_id = ?",
            (
                paid_fen,
                payer_region,
                None if reason is None else reason.value,
                detail,
                at_ms,
                own_paid_fen,
                transfer_id,
            ),
        )
        self._bills.revise(
            transfer_id,
            lambda bill: bill.settled(paid_fen, payer_region, reason, detail, own_paid_fen),
        )

    def requests_due(self, now_ms: int, limit: int = 1000) -> list[tuple[Bill, int]]:
        """Requests still under way whose re-send time has come, with their re-sends so far."""
        rows = self._sql.execute(
            "SELECT transfer_id, resends FROM bills WHERE resend_at_ms <= ?"
            " AND state = 'requested' ORDER BY resend_at_ms, transfer_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [(bill, resends) for tid, resends in rows if (bill := self.bill(tid)) is not None]

    def resent(self, transfer_id: str, next_at_ms: int) -> None:
        """A request was sent again; the next time is ``next_at_ms``."""
        self._sql.execute(
            "UPDATE bills SET resend_at_ms = ?, resends = resends + 1 WHERE transfer_id = ?",
            (next_at_ms, transfer_id),
        )

    # --- binding requests (made here by co-payers) ---

    def binding_request(self, request_id: str) -> BindingRequest | None:
        row = self._sql.execute(
            "SELECT request_id, kind, copayer, binding_id, reply_to, state, reason, detail,"
            " fingerprint, beneficiary, beneficiary_region, relationship"
            " FROM binding_requests WHERE request_id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            return None
        return BindingRequest(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            BillState(row[5]),
            _reason(row[6]),
            row[7],
            row[8],
            row[9],
            row[10],
            row[11],
        )

    def add_binding_request(
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
        """``resend_at_ms`` as for ``add_bill``: cleared when the request is settled."""
        self._sql.execute(
            "INSERT INTO binding_requests (request_id, kind, copayer, binding_id, reply_to,"
            " state, fingerprint, beneficiary, beneficiary_region, relationship, resend_at_ms)"
            " VALUES (?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?)",
            (
                request_id,
                kind,
                copayer,
                binding_id,
                reply_to,
                fingerprint,
                beneficiary,
                beneficiary_region,
                relationship,
                resend_at_ms,
            ),
        )

    def settle_binding_request(
        self, request_id: str, binding_id: str, reason: ReasonCode | None, detail: str
    ) -> None:
        self._sql.execute(
            "UPDATE binding_requests SET state = 'settled', binding_id = ?, reason = ?,"
            " detail = ?, resend_at_ms = NULL WHERE request_id = ?",
            (binding_id, None if reason is None else reason.value, detail, request_id),
        )

    def binding_requests_due(
        self, now_ms: int, limit: int = 1000
    ) -> list[tuple[BindingRequest, int]]:
        """Binding requests under way whose re-send time has come, with their re-sends."""
        rows = self._sql.execute(
            "SELECT request_id, resends FROM binding_requests WHERE resend_at_ms <= ?"
            " AND state = 'requested' ORDER BY resend_at_ms, request_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [
            (request, resends)
            for rid, resends in rows
            if (request := self.binding_request(rid)) is not None
        ]

    def binding_request_resent(self, request_id: str, next_at_ms: int) -> None:
        self._sql.execute(
            "UPDATE binding_requests SET resend_at_ms = ?, resends = resends + 1"
            " WHERE request_id = ?",
            (next_at_ms, request_id),
        )

    # --- premiums ---

    def premium(self, psn_no: str, year: int) -> Premium | None:
        row = self._sql.execute(
            "SELECT psn_no, year, transfer_id, state, amount_fen FROM premiums"
            " WHERE psn_no = ? AND year = ?",
            (psn_no, year),
        ).fetchone()
        return None if row is None else Premium(row[0], row[1], row[2], row[3], row[4])

    def put_premium(
        self, psn_no: str, year: int, transfer_id: str, state: str, amount_fen: int, at_ms: int
    ) -> None:
        self._sql.execute(
            "INSERT OR REPLACE INTO premiums (psn_no, year, transfer_id, state, amount_fen, at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (psn_no, year, transfer_id, state, amount_fen, at_ms),
        )

    def release_premium(self, transfer_id: str) -> None:
        self._sql.execute(
            "DELETE FROM premiums WHERE transfer_id = ? AND state = 'pending'", (transfer_id,)
        )

    # --- settlement reports (clearing) ---

    def add_settlement_line(self, line: SettlementLineRecord) -> None:
        self._sql.execute(
            "INSERT OR IGNORE INTO settlement_lines (window, transfer_id, flow, payer_region,"
            " payee_region, amount_fen) VALUES (?, ?, ?, ?, ?, ?)",
            (
                line.window,
                line.transfer_id,
                line.flow,
                line.payer_region,
                line.payee_region,
                line.amount_fen,
            ),
        )

    def settlement_lines(self, window: int) -> list[SettlementLineRecord]:
        rows = self._sql.execute(
            "SELECT window, transfer_id, flow, payer_region, payee_region, amount_fen"
            " FROM settlement_lines WHERE window = ? ORDER BY transfer_id",
            (window,),
        ).fetchall()
        return [SettlementLineRecord(w, t, Flow(f), a, b, n) for w, t, f, a, b, n in rows]

    def reported_transfer_ids(self) -> set[str]:
        return {r[0] for r in self._sql.execute("SELECT transfer_id FROM settlement_lines")}

    def add_settlement_report(self, report: SettlementReportRecord) -> None:
        self._sql.execute(
            "INSERT OR IGNORE INTO settlement_reports (window, paid_fen, received_fen, net_fen,"
            " lines, opened_at_ms, closed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                report.window,
                report.paid_fen,
                report.received_fen,
                report.net_fen,
                report.lines,
                report.opened_at_ms,
                report.closed_at_ms,
            ),
        )
        self._reports.forget(report.window)

    def settlement_report(self, window: int) -> SettlementReportRecord | None:
        return self._reports.fetch(window, self._read_settlement_report)

    def _read_settlement_report(self, window: int) -> SettlementReportRecord | None:
        row = self._sql.execute(
            "SELECT window, paid_fen, received_fen, net_fen, lines, opened_at_ms, closed_at_ms,"
            " disagreements FROM settlement_reports WHERE window = ?",
            (window,),
        ).fetchone()
        return None if row is None else SettlementReportRecord(*row)

    def mark_reconciled(self, window: int, disagreements: int, at_ms: int) -> None:
        self._sql.execute(
            "UPDATE settlement_reports SET disagreements = ?, reconciled_at_ms = ?"
            " WHERE window = ?",
            (disagreements, at_ms, window),
        )
        self._reports.forget(window)

    def credits_between(self, since_ms: int, until_ms: int) -> list[tuple[str, str, int]]:
        """(transfer_id, payer_region, amount) of credits recorded in [since, until)."""
        rows = self._sql.execute(
            "SELECT transfer_id, payer_region, amount_fen FROM credits"
            " WHERE at_ms >= ? AND at_ms < ?",
            (since_ms, until_ms),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # --- credits (incoming co-payments) ---

    def credit_amount(self, transfer_id: str) -> int | None:
        cached = self._credits.get(transfer_id)
        if cached is not MISS:
            return cached
        row = self._sql.execute(
            "SELECT amount_fen FROM credits WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        amount = None if row is None else int(row[0])
        self._credits.put(transfer_id, amount)
        return amount

    def add_credit(
        self,
        transfer_id: str,
        payer_region: str,
        amount_fen: int,
        at_ms: int,
        flow: Flow = Flow.COPAY,
    ) -> None:
        self._sql.execute(
            "INSERT INTO credits (transfer_id, payer_region, amount_fen, at_ms, flow)"
            " VALUES (?, ?, ?, ?, ?)",
            (transfer_id, payer_region, amount_fen, at_ms, flow),
        )
        self._credits.put(transfer_id, amount_fen)

    def close(self) -> None:
        self.db.close()
