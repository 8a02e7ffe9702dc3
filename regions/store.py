"""What a region remembers: its books and one repository per aggregate, in one SQLite file.

Each repository (``regions.stores``) owns its table(s) and their SQL; ``RegionStore``
opens the file, creates and migrates the schema, and holds them. Handlers may reach a
repository (``store.holds.get``) or the store's own names for the same methods
(``store.hold``), which stay for the many callers written before the split.
"""

from __future__ import annotations

from pathlib import Path

from contracts.reasons import ReasonCode
from regions.books import Books
from regions.hold_states import HoldState
from regions.stores import (
    bills,
    binding_requests,
    credits,
    fund_settlements,
    holds,
    persons,
    policy,
    premiums,
    settlement,
)
from regions.stores.accounts import (
    BILLS_PAID,
    OPENING_FUND,
    PREMIUMS_PAID,
    SETTLEMENT_ADVANCE,
    SETTLEMENT_FUND,
    interregion_account,
    open_fixed_accounts,
    person_account,
    wallet_account,
)
from regions.stores.bills import Bill, Bills, BillState
from regions.stores.binding_requests import BindingRequest, BindingRequests
from regions.stores.credits import Credits
from regions.stores.fund_settlements import FundSettlementRecord, FundSettlements
from regions.stores.holds import Hold, Holds
from regions.stores.persons import Persons
from regions.stores.policy import Policies
from regions.stores.premiums import Premium, Premiums
from regions.stores.settlement import Settlement, SettlementLineRecord, SettlementReportRecord
from storage.sqlite import Database, Synchronous, open_database

__all__ = [
    "BILLS_PAID",
    "OPENING_FUND",
    "PREMIUMS_PAID",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SETTLEMENT_ADVANCE",
    "SETTLEMENT_FUND",
    "Bill",
    "BillState",
    "BindingRequest",
    "FundSettlementRecord",
    "Hold",
    "HoldState",
    "Premium",
    "RegionStore",
    "SettlementLineRecord",
    "SettlementReportRecord",
    "interregion_account",
    "person_account",
    "wallet_account",
]

SCHEMA = "".join(
    module.SCHEMA
    for module in (
        persons,
        policy,
        holds,
        bills,
        binding_requests,
        premiums,
        settlement,
        credits,
        fund_settlements,
    )
)
"""Every table of a region's records (the books add theirs), in the order first written."""

SCHEMA_VERSION = 1
"""The layout ``SCHEMA`` writes (SQLite's ``user_version``). 1: a released hold says how
(``expired``, ``released_by_abort``, ``aborted_before_reserve``; 0 said ``voided``), and
a request under way (bill or binding request) carries its re-send timer (``resend_at_ms``,
``resends``), and a binding request what it proposed."""

AFTER_MIGRATION = bills.AFTER_MIGRATION + binding_requests.AFTER_MIGRATION


class RegionStore:
    """The SQLite file of one region: its books plus the records its handlers need."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        self._migrate()
        db.executescript(AFTER_MIGRATION)
        self.books = Books(db)
        self.persons = Persons(db)
        self.policies = Policies(db)
        self.holds = Holds(db)
        self.bills = Bills(db)
        self.binding_requests = BindingRequests(db)
        self.premiums = Premiums(db)
        self.credits = Credits(db)
        self.settlement = Settlement(db)
        self.fund_settlements = FundSettlements(db)
        open_fixed_accounts(self.books)

        # The names handlers call, each one repository's method.
        self.insurance_of = self.persons.insurance_of
        self.add_person = self.persons.add
        self.set_insurance = self.persons.set_insurance
        self.secret_matches = self.persons.secret_matches
        self.person_count = self.persons.count
        self.policy = self.policies.get
        self.set_policy = self.policies.set
        self.hold = self.holds.get
        self.add_hold = self.holds.add
        self.set_hold_amount = self.holds.set_amount
        self.resolve_hold = self.holds.resolve
        self.expired_holds = self.holds.expired
        self.posted_holds_between = self.holds.posted_between
        self.holds_by_state = self.holds.count_by_state
        self.bill = self.bills.get
        self.add_bill = self.bills.add
        self.record_local_payment = self.bills.record_local_payment
        self.wallet_requests_since = self.bills.wallet_requests_since
        self.settle_bill = self.bills.settle
        self.requests_due = self.bills.due
        self.resent = self.bills.resent
        self.binding_request = self.binding_requests.get
        self.add_binding_request = self.binding_requests.add
        self.settle_binding_request = self.binding_requests.settle
        self.binding_requests_due = self.binding_requests.due
        self.binding_request_resent = self.binding_requests.resent
        self.premium = self.premiums.get
        self.put_premium = self.premiums.put
        self.release_premium = self.premiums.release
        self.credit_amount = self.credits.amount
        self.add_credit = self.credits.add
        self.credits_between = self.credits.between
        self.add_settlement_line = self.settlement.add_line
        self.settlement_lines = self.settlement.lines
        self.reported_transfer_ids = self.settlement.reported_transfer_ids
        self.add_settlement_report = self.settlement.add_report
        self.settlement_report = self.settlement.report
        self.mark_reconciled = self.settlement.mark_reconciled

    @classmethod
    def open(
        cls, path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
    ) -> RegionStore:
        """``cached=False`` for a reader while the region's service writes the file."""
        return cls(open_database(path, synchronous=synchronous, cached=cached))

    def _migrate(self) -> None:
        """Bring a file an older version wrote up to ``SCHEMA_VERSION`` (once)."""
        sql = self.db.connection
        (version,) = sql.execute("PRAGMA user_version").fetchone()
        if version >= SCHEMA_VERSION:
            return
        with self.db.transaction():
            columns = {row[1] for row in sql.execute("PRAGMA table_info(bills)")}
            if "resend_at_ms" not in columns:
                sql.execute("ALTER TABLE bills ADD COLUMN resend_at_ms INTEGER")
                sql.execute("ALTER TABLE bills ADD COLUMN resends INTEGER NOT NULL DEFAULT 0")
                # Requests under way when the old version stopped: ask again at once.
                sql.execute("UPDATE bills SET resend_at_ms = 0 WHERE state = 'requested'")
            columns = {row[1] for row in sql.execute("PRAGMA table_info(binding_requests)")}
            if "resend_at_ms" not in columns:
                for column in (
                    "beneficiary TEXT NOT NULL DEFAULT ''",
                    "beneficiary_region TEXT NOT NULL DEFAULT ''",
                    "relationship TEXT NOT NULL DEFAULT ''",
                    "resend_at_ms INTEGER",
                    "resends INTEGER NOT NULL DEFAULT 0",
                ):
                    sql.execute(f"ALTER TABLE binding_requests ADD COLUMN {column}")
                # Only a revocation can be asked for again: what an old proposal proposed
                # was not kept apart from its fingerprint.
                sql.execute(
                    "UPDATE binding_requests SET resend_at_ms = 0"
                    " WHERE state = 'requested' AND kind = 'revoke'"
                )
            sql.execute(
                "UPDATE holds SET state = CASE WHEN payer IS NULL THEN ?"
                " WHEN reason = ? THEN ? ELSE ? END WHERE state = 'voided'",
                (
                    HoldState.ABORTED_BEFORE_RESERVE.value,
                    ReasonCode.HOLD_EXPIRED.value,
                    HoldState.EXPIRED.value,
                    HoldState.RELEASED_BY_ABORT.value,
                ),
            )
            sql.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()
