"""The region core: a sans-I/O state machine over the region's store.

It takes one operation at a time (``handle``) or the passage of time (``tick``) and
returns the operations to send. It never touches the network or the clock; the caller
wraps a whole batch in one transaction and sends the results only after it commits.

Every handler is idempotent by transfer id: a redelivered operation changes nothing
and re-sends the same answer (so a crash between commit and publish loses nothing).
"""

from __future__ import annotations

from contracts.effects import Anomaly, Event, Outgoing, TransferFinished, TransferStarted
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    Abort,
    Aborted,
    BalanceQuoted,
    BillOutcome,
    Commit,
    CommitResult,
    Credit,
    Credited,
    EnrollPerson,
    Insurance,
    Operation,
    QueryBalance,
    Refuse,
    RequestAid,
    Reserve,
    ReserveResult,
    SubmitBill,
)
from contracts.reasons import COMMITTED, ReasonCode
from regions.store import (
    BILLS_PAID,
    OPENING_FUND,
    Bill,
    BillState,
    Hold,
    HoldState,
    RegionStore,
    interregion_account,
    person_account,
)

COPAY = "copay"


class RegionCore:
    """One pooling region's business rules for the operations addressed to it."""

    def __init__(self, code: str, store: RegionStore) -> None:
        self.code = code
        self.store = store
        self.books = store.books
        self.events: list[Event] = []

    def handle(self, op: Operation, now_ms: int) -> list[Outgoing]:
        """Apply one operation; the caller holds the transaction."""
        match op:
            case Reserve():
                return self.reserve(op, now_ms)
            case Commit():
                return self.commit(op, now_ms)
            case Credit():
                return self.credit(op, now_ms)
            case SubmitBill():
                return self.submit_bill(op, now_ms)
            case Refuse():
                return self.refuse(op, now_ms)
            case Abort():
                return self.abort(op, now_ms)
            case QueryBalance():
                return self.query_balance(op, now_ms)
            case EnrollPerson():
                return self.enroll_person(op, now_ms)
        self.events.append(Anomaly("", f"region {self.code} got unexpected {op.TAG}"))
        return []

    def drain_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # --- set-up ---

    def enroll_person(self, op: EnrollPerson, now_ms: int) -> list[Outgoing]:
        if self.store.insurance_of(op.psn_no) is not None:
            return []  # enrolled already: idempotent
        self.store.add_person(op.psn_no, op.insurance, now_ms)
        if op.insurance is Insurance.EMPLOYEE:
            account = person_account(op.psn_no)
            self.books.open_account(account, no_overdraft=True)
            if op.opening_balance_fen > 0:
                self.books.transfer(
                    f"open:{op.psn_no}", OPENING_FUND, account, op.opening_balance_fen, now_ms
                )
        return []

    # --- the payee side: bills ---

    def submit_bill(self, op: SubmitBill, now_ms: int) -> list[Outgoing]:
        bill = self.store.bill(op.transfer_id)
        if bill is not None:
            if (bill.beneficiary, bill.amount_fen, bill.reply_to) != (
                op.beneficiary,
                op.amount_fen,
                op.reply_to,
            ):
                detail = f"transfer {op.transfer_id} exists with different fields"
                return [Outgoing(op.reply_to, _refusal(op, ReasonCode.DUPLICATE_MISMATCH, detail))]
            if bill.state is BillState.SETTLED:
                return [Outgoing(bill.reply_to, _outcome_of(bill))]
            return [Outgoing(CLEARINGHOUSE, self._aid_request(bill))]  # re-ask: idempotent there
        self.store.add_bill(op.transfer_id, op.beneficiary, op.amount_fen, op.reply_to, now_ms)
        self.events.append(TransferStarted(op.transfer_id, COPAY))
        refusal = self._refusal_reason(op)
        if refusal is not None:
            reason, detail = refusal
            return self._settle(op.transfer_id, 0, "", reason, detail, now_ms)
        bill = self.store.bill(op.transfer_id)
        assert bill is not None
        return [Outgoing(CLEARINGHOUSE, self._aid_request(bill))]

    def _refusal_reason(self, op: SubmitBill) -> tuple[ReasonCode, str] | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT, f"amount {op.amount_fen} fen"
        insurance = self.store.insurance_of(op.beneficiary)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON, f"{op.beneficiary} is not known in {self.code}"
        if insurance is Insurance.NONE:
            return ReasonCode.BENEFICIARY_NOT_INSURED, f"{op.beneficiary} is not insured"
        return None

    def _aid_request(self, bill: Bill) -> RequestAid:
        return RequestAid(bill.transfer_id, bill.beneficiary, self.code, bill.amount_fen)

    def _settle(
        self,
        transfer_id: str,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        now_ms: int,
    ) -> list[Outgoing]:
        """Record a bill's final outcome once and tell its submitter."""
        bill = self.store.bill(transfer_id)
        if bill is None:
            return []
        if bill.state is BillState.SETTLED:
            return [Outgoing(bill.reply_to, _outcome_of(bill))]
        self.store.settle_bill(
            transfer_id,
            paid_fen=paid_fen,
            payer_region=payer_region,
            reason=reason,
            detail=detail,
            at_ms=now_ms,
        )
        settled = self.store.bill(transfer_id)
        assert settled is not None
        self.events.append(
            TransferFinished(
                transfer_id,
                COPAY,
                COMMITTED if reason is None else reason.value,
                0,
                now_ms,
                paid_fen,
                detail,
            )
        )
        return [Outgoing(settled.reply_to, _outcome_of(settled))]

    def credit(self, op: Credit, now_ms: int) -> list[Outgoing]:
        known = self.store.credit_amount(op.transfer_id)
        if known is None:
            account = interregion_account(op.payer_region)
            self.books.open_account(account, no_overdraft=False)
            self.books.transfer(op.transfer_id, account, BILLS_PAID, op.amount_fen, now_ms)
            self.store.add_credit(op.transfer_id, op.payer_region, op.amount_fen, now_ms)
        elif known != op.amount_fen:
            self.events.append(
                Anomaly(op.transfer_id, f"credit of {op.amount_fen} after {known} was recorded")
            )
        out = [Outgoing(CLEARINGHOUSE, Credited(op.transfer_id, self.code))]
        bill = self.store.bill(op.transfer_id)
        if bill is None:
            # Money arrived for a bill this region does not know (e.g. restored from an old
            # backup): the credit is kept in the books; reconciliation will show the gap.
            self.events.append(Anomaly(op.transfer_id, "credit for an unknown bill"))
            return out
        return out + self._settle(op.transfer_id, op.amount_fen, op.payer_region, None, "", now_ms)

    def refuse(self, op: Refuse, now_ms: int) -> list[Outgoing]:
        return self._settle(op.transfer_id, 0, "", op.reason, op.detail, now_ms)

    # --- the payer side: balances and holds ---

    def query_balance(self, op: QueryBalance, now_ms: int) -> list[Outgoing]:
        insurance = self.store.insurance_of(op.psn_no)
        reason = None
        if insurance is None:
            reason = ReasonCode.UNKNOWN_PERSON
        elif insurance is not Insurance.EMPLOYEE:
            reason = ReasonCode.NO_PERSONAL_ACCOUNT
        available = 0 if reason else self.books.available(person_account(op.psn_no))
        quote = BalanceQuoted(op.transfer_id, op.psn_no, self.code, available, reason)
        return [Outgoing(CLEARINGHOUSE, quote)]

    def reserve(self, op: Reserve, now_ms: int) -> list[Outgoing]:
        hold = self.store.hold(op.transfer_id)
        if hold is not None:
            return [Outgoing(CLEARINGHOUSE, self._reserve_answer(hold, op))]
        reason = self._reserve_refusal(op)
        if reason is not None:
            self.store.add_hold(
                op.transfer_id, op.payer, op.payee_region, op.amount_fen, 0,
                HoldState.REFUSED, reason, now_ms, now_ms,
            )  # fmt: skip
            return [Outgoing(CLEARINGHOUSE, ReserveResult(op.transfer_id, self.code, 0, reason))]
        account = person_account(op.payer)
        held = min(self.books.available(account), op.amount_fen)
        creditor = interregion_account(op.payee_region)
        self.books.open_account(creditor, no_overdraft=False)
        self.books.reserve(op.transfer_id, account, creditor, held, now_ms)
        self.store.add_hold(
            op.transfer_id, op.payer, op.payee_region, op.amount_fen, held,
            HoldState.PENDING, None, now_ms + op.hold_timeout_ms, now_ms,
        )  # fmt: skip
        return [Outgoing(CLEARINGHOUSE, ReserveResult(op.transfer_id, self.code, held))]

    def _reserve_refusal(self, op: Reserve) -> ReasonCode | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT
        insurance = self.store.insurance_of(op.payer)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON
        if insurance is not Insurance.EMPLOYEE:
            return ReasonCode.NO_PERSONAL_ACCOUNT
        if self.books.available(person_account(op.payer)) <= 0:
            return ReasonCode.ZERO_BALANCE
        return None

    def _reserve_answer(self, hold: Hold, op: Reserve) -> ReserveResult:
        """The answer to a reserve seen before: the same one, or why not."""
        if hold.payer is None:  # an abort arrived first: never hold for it now
            return ReserveResult(op.transfer_id, self.code, 0, hold.reason or ReasonCode.TIMEOUT)
        if (hold.payer, hold.payee_region, hold.requested_fen) != (
            op.payer,
            op.payee_region,
            op.amount_fen,
        ):
            return ReserveResult(op.transfer_id, self.code, 0, ReasonCode.DUPLICATE_MISMATCH)
        if hold.state in (HoldState.PENDING, HoldState.POSTED):
            return ReserveResult(op.transfer_id, self.code, hold.held_fen)
        return ReserveResult(op.transfer_id, self.code, 0, hold.reason or ReasonCode.TIMEOUT)

    def commit(self, op: Commit, now_ms: int) -> list[Outgoing]:
        hold = self.store.hold(op.transfer_id)
        if hold is None or hold.payer is None:
            result = CommitResult(op.transfer_id, self.code, 0, ReasonCode.UNKNOWN_TRANSFER)
            return [Outgoing(CLEARINGHOUSE, result)]
        if hold.state is HoldState.PENDING and now_ms >= hold.expires_at_ms:
            self._void(hold, ReasonCode.HOLD_EXPIRED, now_ms)
            hold = self.store.hold(op.transfer_id)
            assert hold is not None
        if hold.state is HoldState.PENDING:
            assert hold.payer is not None and hold.payee_region is not None
            self.books.post(
                hold.transfer_id,
                person_account(hold.payer),
                interregion_account(hold.payee_region),
                hold.held_fen,
                now_ms,
            )
            self.store.resolve_hold(hold.transfer_id, HoldState.POSTED, None, now_ms)
            return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, self.code, hold.held_fen))]
        if hold.state is HoldState.POSTED:
            return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, self.code, hold.held_fen))]
        reason = hold.reason or ReasonCode.HOLD_EXPIRED
        return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, self.code, 0, reason))]

    def abort(self, op: Abort, now_ms: int) -> list[Outgoing]:
        hold = self.store.hold(op.transfer_id)
        if hold is None:
            # The abort overtook its reserve: leave a tombstone so the reserve never holds.
            self.store.add_hold(
                op.transfer_id, None, None, 0, 0, HoldState.VOIDED, ReasonCode.TIMEOUT,
                now_ms, now_ms,
            )  # fmt: skip
        elif hold.state is HoldState.PENDING:
            self._void(hold, ReasonCode.TIMEOUT, now_ms)
        elif hold.state is HoldState.POSTED:
            # The clearinghouse never aborts after deciding to commit; say so, change nothing.
            self.events.append(Anomaly(op.transfer_id, "abort after the hold was posted"))
            result = CommitResult(op.transfer_id, self.code, hold.held_fen)
            return [Outgoing(CLEARINGHOUSE, result)]
        return [Outgoing(CLEARINGHOUSE, Aborted(op.transfer_id, self.code))]

    def _void(self, hold: Hold, reason: ReasonCode, now_ms: int) -> None:
        assert hold.payer is not None and hold.payee_region is not None
        self.books.void(
            hold.transfer_id,
            person_account(hold.payer),
            interregion_account(hold.payee_region),
            hold.held_fen,
            now_ms,
        )
        self.store.resolve_hold(hold.transfer_id, HoldState.VOIDED, reason, now_ms)

    # --- time ---

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Release holds whose time is up. The clearinghouse learns it at commit."""
        for hold in self.store.expired_holds(now_ms):
            self._void(hold, ReasonCode.HOLD_EXPIRED, now_ms)
        return []


def _outcome_of(bill: Bill) -> BillOutcome:
    return BillOutcome(
        bill.transfer_id,
        bill.paid_fen,
        bill.amount_fen - bill.paid_fen,
        bill.payer_region,
        bill.reason,
        bill.detail,
    )


def _refusal(op: SubmitBill, reason: ReasonCode, detail: str) -> BillOutcome:
    return BillOutcome(op.transfer_id, 0, op.amount_fen, "", reason, detail)
