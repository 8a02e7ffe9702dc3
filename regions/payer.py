"""The payer side of a region: balances, holds (pending), posting and voiding them.

The commit point of every transfer is here: a pending hold is either posted (on
``Commit``) or voided (on ``Abort``, or when it expires), in this region's database.
"""

from __future__ import annotations

from contracts.effects import Anomaly, Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    Abort,
    Aborted,
    BalanceQuoted,
    Commit,
    CommitResult,
    QueryBalance,
    Repair,
    Reserve,
    ReserveResult,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Insurance
from regions.context import RegionContext
from regions.store import Hold, HoldState, interregion_account, person_account


class PayerSide:
    """Handlers for what the clearinghouse asks of a co-payer's region."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.books = ctx.books

    def query_balance(self, op: QueryBalance, now_ms: int) -> list[Outgoing]:
        insurance = self.store.insurance_of(op.psn_no)
        reason = None
        if insurance is None:
            reason = ReasonCode.UNKNOWN_PERSON
        elif insurance is not Insurance.EMPLOYEE:
            reason = ReasonCode.NO_PERSONAL_ACCOUNT
        available = 0 if reason else self.books.available(person_account(op.psn_no))
        quote = BalanceQuoted(op.transfer_id, op.psn_no, self.ctx.code, available, reason)
        return [Outgoing(CLEARINGHOUSE, quote)]

    def reserve(self, op: Reserve, now_ms: int) -> list[Outgoing]:
        hold = self.store.hold(op.transfer_id)
        if hold is not None:
            return [Outgoing(CLEARINGHOUSE, self._reserve_answer(hold, op))]
        account = person_account(op.payer)
        available = self.books.available(account)
        reason = self._reserve_refusal(op, available)
        if reason is not None:
            self.store.add_hold(
                op.transfer_id,
                op.payer,
                op.payee_region,
                op.amount_fen,
                0,
                HoldState.REFUSED,
                reason,
                now_ms,
                now_ms,
                op.flow,
            )
            result = ReserveResult(op.transfer_id, self.ctx.code, 0, reason)
            return [Outgoing(CLEARINGHOUSE, result)]
        held = min(available, op.amount_fen)
        creditor = interregion_account(op.payee_region)
        self.books.open_account(creditor, no_overdraft=False)
        self.books.reserve(op.transfer_id, account, creditor, held, now_ms)
        self.store.add_hold(
            op.transfer_id,
            op.payer,
            op.payee_region,
            op.amount_fen,
            held,
            HoldState.PENDING,
            None,
            now_ms + op.hold_timeout_ms,
            now_ms,
            op.flow,
        )
        return [Outgoing(CLEARINGHOUSE, ReserveResult(op.transfer_id, self.ctx.code, held))]

    def _reserve_refusal(self, op: Reserve, available: int) -> ReasonCode | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT
        insurance = self.store.insurance_of(op.payer)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON
        if insurance is not Insurance.EMPLOYEE:
            return ReasonCode.NO_PERSONAL_ACCOUNT
        if available <= 0:
            return ReasonCode.INSUFFICIENT_BALANCE if op.all_or_nothing else ReasonCode.ZERO_BALANCE
        if op.all_or_nothing and available < op.amount_fen:
            return ReasonCode.INSUFFICIENT_BALANCE
        return None

    def _reserve_answer(self, hold: Hold, op: Reserve) -> ReserveResult:
        """The answer to a reserve seen before: the same one, or why not."""
        code = self.ctx.code
        if hold.payer is None:  # an abort arrived first: never hold for it now
            return ReserveResult(op.transfer_id, code, 0, hold.reason or ReasonCode.TIMEOUT)
        if (hold.payer, hold.payee_region, hold.requested_fen) != (
            op.payer,
            op.payee_region,
            op.amount_fen,
        ):
            return ReserveResult(op.transfer_id, code, 0, ReasonCode.DUPLICATE_MISMATCH)
        if hold.state in (HoldState.PENDING, HoldState.POSTED):
            return ReserveResult(op.transfer_id, code, hold.held_fen)
        return ReserveResult(op.transfer_id, code, 0, hold.reason or ReasonCode.TIMEOUT)

    def commit(self, op: Commit, now_ms: int) -> list[Outgoing]:
        code = self.ctx.code
        hold = self.store.hold(op.transfer_id)
        if hold is None or hold.payer is None:
            result = CommitResult(op.transfer_id, code, 0, ReasonCode.UNKNOWN_TRANSFER)
            return [Outgoing(CLEARINGHOUSE, result)]
        if hold.state is HoldState.PENDING and now_ms >= hold.expires_at_ms:
            self._void(hold, ReasonCode.HOLD_EXPIRED, now_ms)
            hold = self.store.hold(op.transfer_id)
            assert hold is not None
        if hold.state is HoldState.PENDING:
            self._post(hold, now_ms)
            return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, code, hold.held_fen))]
        if hold.state is HoldState.POSTED:
            return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, code, hold.held_fen))]
        reason = hold.reason or ReasonCode.HOLD_EXPIRED
        return [Outgoing(CLEARINGHOUSE, CommitResult(op.transfer_id, code, 0, reason))]

    def abort(self, op: Abort, now_ms: int) -> list[Outgoing]:
        hold = self.store.hold(op.transfer_id)
        if hold is None:
            # The abort overtook its reserve: leave a tombstone so the reserve never holds.
            self.store.add_hold(
                op.transfer_id,
                None,
                None,
                0,
                0,
                HoldState.VOIDED,
                ReasonCode.TIMEOUT,
                now_ms,
                now_ms,
            )
        elif hold.state is HoldState.PENDING:
            self._void(hold, ReasonCode.TIMEOUT, now_ms)
        elif hold.state is HoldState.POSTED:
            # The clearinghouse never aborts after deciding to commit; say so, change nothing.
            self.ctx.events.append(Anomaly(op.transfer_id, "abort after the hold was posted"))
            result = CommitResult(op.transfer_id, self.ctx.code, hold.held_fen)
            return [Outgoing(CLEARINGHOUSE, result)]
        return [Outgoing(CLEARINGHOUSE, Aborted(op.transfer_id, self.ctx.code))]

    def _post(self, hold: Hold, now_ms: int) -> None:
        assert hold.payer is not None and hold.payee_region is not None
        self.books.post(
            hold.transfer_id,
            person_account(hold.payer),
            interregion_account(hold.payee_region),
            hold.held_fen,
            now_ms,
        )
        self.store.resolve_hold(hold.transfer_id, HoldState.POSTED, None, now_ms)

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

    def expire_holds(self, now_ms: int) -> None:
        """Release holds whose time is up. The clearinghouse learns it at commit."""
        for hold in self.store.expired_holds(now_ms):
            self._void(hold, ReasonCode.HOLD_EXPIRED, now_ms)

    def repair(self, op: Repair, now_ms: int) -> bool:
        """Post a committed transfer this region lost (e.g. restored from an old backup).

        Returns False when it cannot (the account no longer covers it): the disagreement
        then stays open and is reported again.
        """
        hold = self.store.hold(op.transfer_id)
        if hold is not None and hold.state is HoldState.POSTED:
            return True
        if hold is not None and hold.state is HoldState.PENDING and hold.held_fen == op.amount_fen:
            self._post(hold, now_ms)
            return True
        account = person_account(op.psn_no)
        if self.books.available(account) < op.amount_fen:
            self.ctx.events.append(
                Anomaly(op.transfer_id, f"cannot repair: {account} cannot cover {op.amount_fen}")
            )
            return False
        creditor = interregion_account(op.counterparty_region)
        self.books.open_account(creditor, no_overdraft=False)
        if hold is not None and hold.state is HoldState.PENDING:
            self._void(hold, ReasonCode.UNKNOWN_TRANSFER, now_ms)
        self.books.transfer(op.transfer_id, account, creditor, op.amount_fen, now_ms)
        if hold is None:
            self.store.add_hold(
                op.transfer_id,
                op.psn_no,
                op.counterparty_region,
                op.amount_fen,
                op.amount_fen,
                HoldState.POSTED,
                None,
                now_ms,
                now_ms,
                op.flow,
            )
        else:
            self.store.set_hold_amount(op.transfer_id, op.amount_fen)
            self.store.resolve_hold(op.transfer_id, HoldState.POSTED, None, now_ms)
        return True
