"""The region core: a sans-I/O state machine over the region's store.

It takes one operation at a time (``handle``) or the passage of time (``tick``) and
returns its ``Effects``: the operations to send and the events to observe. It never
touches the network or the clock; the caller wraps a whole batch in one transaction and
sends the results (and reports the events) only after it commits.

Every handler is idempotent by transfer (or request) id: a redelivered operation changes
nothing and re-sends the same answer, so a crash between commit and publish loses nothing.
The handlers live with the role they serve: ``payer`` (holds), ``payee`` (bills, credits,
premiums), ``requests`` (a co-payer's own requests), ``reconciler`` (settlement reports),
``booking`` (a window's settlement against the fund);
``resender`` asks again for what was forwarded to the clearinghouse and not yet answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    Abort,
    BindingDecided,
    CheckPremium,
    Commit,
    Completed,
    ConfigureRegion,
    Credit,
    EnrollPerson,
    InsuranceChanged,
    Operation,
    PayPremium,
    QueryBalance,
    Refuse,
    Repair,
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    Reserve,
    RevokeBinding,
    Settle,
    SettlementLine,
    SettlementReport,
    SubmitBill,
    VerifyBeneficiary,
)
from contracts.policy import policy_of
from contracts.vocabulary import Insurance
from regions.context import RegionContext
from regions.hold_states import HoldStateError
from regions.payee import PayeeSide
from regions.payer import PayerSide
from regions.reconciliation import Reconciler
from regions.requests import CopayerRequests
from regions.resending import Resender
from regions.settling import FundBooking
from regions.store import OPENING_FUND, RegionStore, person_account

Handler = Callable[[Any, int], Effects]


class RegionCore:
    """One pooling region's business rules for the operations addressed to it."""

    def __init__(self, code: str, store: RegionStore) -> None:
        self.code = code
        self.store = store
        self.books = store.books
        self.ctx = RegionContext(code, store)
        self.payer = PayerSide(self.ctx)
        self.payee = PayeeSide(self.ctx)
        self.requests = CopayerRequests(self.ctx)
        self.reconciler = Reconciler(self.ctx, self.payer, self.payee)
        self.resender = Resender(self.ctx, self.payee, self.requests)
        self.booking = FundBooking(self.ctx)
        self._handlers: dict[type[Operation], Handler] = {
            Reserve: self.payer.reserve,
            Commit: self.payer.commit,
            Abort: self.payer.abort,
            QueryBalance: self.payer.query_balance,
            SubmitBill: self.payee.submit_bill,
            Credit: self.payee.credit,
            Refuse: self.payee.refuse,
            VerifyBeneficiary: self.payee.verify_beneficiary,
            CheckPremium: self.payee.check_premium,
            PayPremium: self.payee.pay_premium,
            RequestBinding: self.requests.request_binding,
            RevokeBinding: self.requests.revoke_binding,
            BindingDecided: self.requests.binding_decided,
            RequestWalletTransfer: self.requests.request_wallet_transfer,
            RequestPremiumPayment: self.requests.request_premium_payment,
            Completed: self.requests.completed,
            SettlementLine: self.settlement_line,
            SettlementReport: self.settlement_report,
            Repair: self.reconciler.repair,
            Settle: self.booking.settle,
            EnrollPerson: self.enroll_person,
            ConfigureRegion: self.configure_region,
        }

    def handle(self, op: Operation, now_ms: int) -> Effects:
        """Apply one operation; the caller holds the transaction."""
        handler = self._handlers.get(type(op))
        if handler is None:
            return Effects(events=[Anomaly("", f"region {self.code} got unexpected {op.TAG}")])
        try:
            return handler(op, now_ms)
        except HoldStateError as error:
            # The table refused the event before it changed the hold: no answer, but loud.
            return Effects(events=[Anomaly(error.transfer_id, f"{op.TAG}: {error}")])

    def tick(self, now_ms: int) -> Effects:
        """Release holds whose time is up (the clearinghouse learns it at commit), and ask
        again for requests forwarded for a client that have no outcome yet."""
        self.payer.expire_holds(now_ms)
        return self.resender.resend_due(now_ms)

    # --- a closed window: reconciliation, then the settlement that may await its lines ---

    def settlement_line(self, op: SettlementLine, now_ms: int) -> Effects:
        return self.reconciler.settlement_line(op, now_ms) + self.booking.lines_arrived(
            op.window, now_ms
        )

    def settlement_report(self, op: SettlementReport, now_ms: int) -> Effects:
        return self.reconciler.settlement_report(op, now_ms) + self.booking.lines_arrived(
            op.window, now_ms
        )

    # --- set-up ---

    def configure_region(self, op: ConfigureRegion, now_ms: int) -> Effects:
        if op.region != self.code:
            return Effects(
                events=[Anomaly("", f"configuration for {op.region} sent to {self.code}")]
            )
        self.store.set_policy(policy_of(op), op.enabled)
        self.ctx.forget_policy()
        return Effects()

    def enroll_person(self, op: EnrollPerson, now_ms: int) -> Effects:
        known = self.store.insurance_of(op.psn_no)
        if known is not None:
            if known is op.insurance:
                return Effects()  # enrolled already: idempotent
            # A change of insurance: the directory ends the bindings it invalidates.
            self.store.set_insurance(op.psn_no, op.insurance)
            if op.insurance is Insurance.EMPLOYEE:
                self.books.open_account(person_account(op.psn_no), no_overdraft=True)
            changed = InsuranceChanged(op.psn_no, self.code, op.insurance)
            return Effects([Outgoing(CLEARINGHOUSE, changed)])
        self.store.add_person(op.psn_no, op.insurance, now_ms, op.secret)
        if op.insurance is Insurance.EMPLOYEE:
            account = person_account(op.psn_no)
            self.books.open_account(account, no_overdraft=True)
            if op.opening_balance_fen > 0:
                self.books.transfer(
                    f"open:{op.psn_no}", OPENING_FUND, account, op.opening_balance_fen, now_ms
                )
        return Effects()
