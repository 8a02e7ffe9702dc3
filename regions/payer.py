"""The payer side of a region: balances, holds (pending), posting and releasing them.

The commit point of every transfer is here: a pending hold is either posted (on
``Commit``) or released (on ``Abort``, or when it expires), in this region's database.
Which events a hold takes in which state, and what each answers, is the table in
``regions.hold_states``; an event it does not allow raises ``HoldStateError``.
"""

from __future__ import annotations

from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    Abort,
    Aborted,
    BalanceQuoted,
    Commit,
    CommitResult,
    Operation,
    QueryBalance,
    Repair,
    Reserve,
    ReserveResult,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Insurance
from regions.context import RegionContext
from regions.hold_states import Answer, HoldEvent, HoldState, Transition, transition
from regions.store import Hold, interregion_account, person_account, wallet_account


def held_account(payer: str, from_wallet: bool) -> str:
    """The ledger account a hold is on: the payer's wallet or personal account."""
    return wallet_account(payer) if from_wallet else person_account(payer)


class PayerSide:
    """Handlers for what the clearinghouse asks of a co-payer's region."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.books = ctx.books

    def query_balance(self, op: QueryBalance, now_ms: int) -> Effects:
        insurance = self.store.insurance_of(op.psn_no)
        reason = None
        if insurance is None:
            reason = ReasonCode.UNKNOWN_PERSON
        elif insurance is not Insurance.EMPLOYEE:
            reason = ReasonCode.NO_PERSONAL_ACCOUNT
        available = 0 if reason else self.books.available(person_account(op.psn_no))
        quote = BalanceQuoted(op.transfer_id, op.psn_no, self.ctx.code, available, reason)
        return Effects([Outgoing(CLEARINGHOUSE, quote)])

    # --- the hold's life (regions.hold_states) ---

    def _current(self, transfer_id: str, now_ms: int) -> Hold | None:
        """The transfer's hold as of ``now_ms``: a pending one whose time is up expires
        first, so what arrives after the deadline meets ``EXPIRED``, timer run or not."""
        hold = self.store.hold(transfer_id)
        if hold is not None and hold.state is HoldState.PENDING and now_ms >= hold.expires_at_ms:
            self._release(hold, transition(transfer_id, hold.state, HoldEvent.EXPIRE), now_ms)
            hold = self.store.hold(transfer_id)
        return hold

    def _answer(self, hold: Hold, step: Transition, refusal: ReasonCode | None = None) -> Effects:
        """The message ``step`` answers with; ``refusal``: a refusal decided just now."""
        tid, code = hold.transfer_id, self.ctx.code
        reason = step.reason or refusal or hold.reason or ReasonCode.TIMEOUT
        match step.answer:
            case Answer.HELD:
                answer: Operation = ReserveResult(tid, code, hold.held_fen)
            case Answer.NOT_HELD:
                answer = ReserveResult(tid, code, 0, reason)
            case Answer.POSTED:
                answer = CommitResult(tid, code, hold.held_fen)
            case Answer.NOT_POSTED:
                answer = CommitResult(tid, code, 0, reason)
            case Answer.ABORTED:
                answer = Aborted(tid, code)
            case Answer.NOTHING:
                return Effects()
        return Effects([Outgoing(CLEARINGHOUSE, answer)])

    def reserve(self, op: Reserve, now_ms: int) -> Effects:
        hold = self._current(op.transfer_id, now_ms)
        if hold is not None:
            same = hold.payer is None or (hold.payer, hold.payee_region, hold.requested_fen) == (
                op.payer,
                op.payee_region,
                op.amount_fen,
            )
            event = HoldEvent.RESERVE_REPEATED if same else HoldEvent.RESERVE_MISMATCH
            return self._answer(hold, transition(op.transfer_id, hold.state, event))
        account = held_account(op.payer, op.from_wallet)
        if op.from_wallet:
            self.books.open_account(account, no_overdraft=True)
        available = self.books.available(account)
        refusal = self._reserve_refusal(op, available)
        event = HoldEvent.RESERVE if refusal is None else HoldEvent.RESERVE_REFUSED
        if refusal is None and op.prepared:
            event = HoldEvent.RESERVE_PREPARED
        step = transition(op.transfer_id, HoldState.ABSENT, event)
        pending = step.next_state in (HoldState.PENDING, HoldState.PREPARED)
        held = min(available, op.amount_fen) if pending else 0
        if pending:
            creditor = interregion_account(op.payee_region)
            self.books.open_account(creditor, no_overdraft=False)
            self.books.reserve(op.transfer_id, account, creditor, held, now_ms)
        self.store.add_hold(
            op.transfer_id,
            op.payer,
            op.payee_region,
            op.amount_fen,
            held,
            step.next_state,
            refusal,
            now_ms + op.hold_timeout_ms if pending else now_ms,
            now_ms,
            op.flow,
            op.from_wallet,
        )
        hold = self.store.hold(op.transfer_id)
        assert hold is not None
        return self._answer(hold, step, refusal)

    def _reserve_refusal(self, op: Reserve, available: int) -> ReasonCode | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT
        insurance = self.store.insurance_of(op.payer)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON
        if insurance is not Insurance.EMPLOYEE and not op.from_wallet:
            return ReasonCode.NO_PERSONAL_ACCOUNT
        if available <= 0:
            return ReasonCode.INSUFFICIENT_BALANCE if op.all_or_nothing else ReasonCode.ZERO_BALANCE
        if op.all_or_nothing and available < op.amount_fen:
            return ReasonCode.INSUFFICIENT_BALANCE
        return None

    def commit(self, op: Commit, now_ms: int) -> Effects:
        hold = self._current(op.transfer_id, now_ms)
        if hold is None:
            step = transition(op.transfer_id, HoldState.ABSENT, HoldEvent.COMMIT)
            return self._answer(self._no_hold(op.transfer_id), step)
        step = transition(op.transfer_id, hold.state, HoldEvent.COMMIT)
        if step.next_state is not hold.state:  # PENDING -> POSTED
            self._post(hold, now_ms)
        return self._answer(hold, step)

    def abort(self, op: Abort, now_ms: int) -> Effects:
        hold = self._current(op.transfer_id, now_ms)
        if hold is None:
            step = transition(op.transfer_id, HoldState.ABSENT, HoldEvent.ABORT)
            # The tombstone: the reserve this abort overtook must never hold.
            self.store.add_hold(
                op.transfer_id, None, None, 0, 0, step.next_state, step.reason, now_ms, now_ms
            )
            return self._answer(self._no_hold(op.transfer_id), step)
        step = transition(op.transfer_id, hold.state, HoldEvent.ABORT)
        if step.next_state is not hold.state:  # PENDING -> RELEASED_BY_ABORT
            self._release(hold, step, now_ms)
        return self._answer(hold, step)

    @staticmethod
    def _no_hold(transfer_id: str) -> Hold:
        return Hold(transfer_id, None, None, 0, 0, HoldState.ABSENT, None, 0)

    def _post(self, hold: Hold, now_ms: int) -> None:
        assert hold.payer is not None and hold.payee_region is not None
        self.books.post(
            hold.transfer_id,
            held_account(hold.payer, hold.from_wallet),
            interregion_account(hold.payee_region),
            hold.held_fen,
            now_ms,
        )
        self.store.resolve_hold(hold.transfer_id, HoldState.POSTED, None, now_ms)

    def _release(self, hold: Hold, step: Transition, now_ms: int) -> None:
        """Void a pending hold: its amount is available again."""
        assert hold.payer is not None and hold.payee_region is not None
        self.books.void(
            hold.transfer_id,
            held_account(hold.payer, hold.from_wallet),
            interregion_account(hold.payee_region),
            hold.held_fen,
            now_ms,
        )
        self.store.resolve_hold(hold.transfer_id, step.next_state, step.reason, now_ms)

    def expire_holds(self, now_ms: int) -> None:
        """Release holds whose time is up. The clearinghouse learns it at commit."""
        for hold in self.store.expired_holds(now_ms):
            self._release(hold, transition(hold.transfer_id, hold.state, HoldEvent.EXPIRE), now_ms)

    def repair(self, op: Repair, now_ms: int) -> tuple[bool, Effects]:
        """Post a committed transfer this region lost (e.g. restored from an old backup).

        Returns whether it did, and its effects. It cannot when the account no longer
        covers it: the disagreement then stays open and is reported again.
        """
        hold = self._current(op.transfer_id, now_ms)
        state = HoldState.ABSENT if hold is None else hold.state
        transition(op.transfer_id, state, HoldEvent.REPAIR)  # -> POSTED, or not allowed
        if hold is not None and hold.state is HoldState.POSTED:
            return True, Effects()
        waiting = (HoldState.PENDING, HoldState.PREPARED)
        if hold is not None and hold.state in waiting and hold.held_fen == op.amount_fen:
            self._post(hold, now_ms)
            return True, Effects()
        from_wallet = hold.from_wallet if hold is not None else op.from_wallet
        account = held_account(op.psn_no, from_wallet)
        if self.books.available(account) < op.amount_fen:
            what = f"cannot repair: {account} cannot cover {op.amount_fen}"
            return False, Effects(events=[Anomaly(op.transfer_id, what)])
        creditor = interregion_account(op.counterparty_region)
        self.books.open_account(creditor, no_overdraft=False)
        if hold is not None and hold.state in waiting:
            # A hold of another amount: released, and the recorded amount posted instead.
            assert hold.payee_region is not None
            payee_account = interregion_account(hold.payee_region)
            self.books.void(hold.transfer_id, account, payee_account, hold.held_fen, now_ms)
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
                from_wallet,
            )
        else:
            self.store.set_hold_amount(op.transfer_id, op.amount_fen)
            self.store.resolve_hold(op.transfer_id, HoldState.POSTED, None, now_ms)
        return True, Effects()
