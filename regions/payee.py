"""The payee side of a region: bills of its insured, incoming credits, premiums.

The beneficiary's region governs the order of payment (its policy's ``payment_order``):
the beneficiary's wallet pays first (it is the beneficiary's own money), then either
the beneficiary's own personal account or the co-payer's, and the other for the rest;
what none covers is left to other means (cash). Accounts are never combined across
co-payers: the clearinghouse picks one.
"""

from __future__ import annotations

from typing import assert_never

from contracts.effects import Anomaly, AnyEvent, Effects, Outgoing, TransferStarted
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    BeneficiaryVerified,
    BillOutcome,
    CheckPremium,
    Credit,
    Credited,
    PayPremium,
    PremiumQuoted,
    Refuse,
    Repair,
    RequestAid,
    SubmitBill,
    VerifyBeneficiary,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow, Insurance, PaymentOrder
from regions.context import RegionContext, outcome_of, resend_delay_ms
from regions.store import (
    BILLS_PAID,
    PREMIUMS_PAID,
    Bill,
    BillState,
    interregion_account,
    person_account,
    wallet_account,
)


class PayeeSide:
    """Handlers for bills submitted here and money arriving for this region's insured."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.books = ctx.books

    # --- bills ---

    def submit_bill(self, op: SubmitBill, now_ms: int) -> Effects:
        bill = self.store.bill(op.transfer_id)
        if bill is not None:
            return self._seen_before(bill, op)
        # The re-send timer runs from now; settling the bill (below, or later) stops it.
        self.store.add_bill(
            op.transfer_id,
            op.beneficiary,
            op.amount_fen,
            op.reply_to,
            now_ms,
            resend_at_ms=now_ms + resend_delay_ms(0),
        )
        started = Effects(events=[TransferStarted(op.transfer_id, Flow.COPAY)])
        refusal = self._refusal(op)
        if refusal is not None:
            reason, detail = refusal
            return started + self.ctx.settle(
                op.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=reason,
                detail=detail,
                now_ms=now_ms,
            )
        insurance = self.store.insurance_of(op.beneficiary)
        wallet_paid = self._pay_locally(
            op.transfer_id, "wallet", wallet_account(op.beneficiary), op.amount_fen, now_ms
        )
        rest = op.amount_fen - wallet_paid
        own_paid = 0
        if self.ctx.policy.payment_order is PaymentOrder.OWN_FIRST:
            if insurance is Insurance.EMPLOYEE:
                own_paid = self._pay_locally(
                    op.transfer_id, "own", person_account(op.beneficiary), rest, now_ms
                )
            rest -= own_paid
        self.store.record_local_payment(
            op.transfer_id,
            own_paid_fen=own_paid,
            wallet_paid_fen=wallet_paid,
            aid_requested_fen=rest,
        )
        if rest == 0:
            detail = "paid from the beneficiary's own wallet and account"
            return started + self.ctx.settle(
                op.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=None,
                detail=detail,
                now_ms=now_ms,
            )
        aid = RequestAid(op.transfer_id, op.beneficiary, self.ctx.code, rest)
        return Effects([Outgoing(CLEARINGHOUSE, aid)], started.events)

    def aid_request(self, bill: Bill) -> RequestAid:
        """The request for aid of a bill under way, as first sent."""
        return RequestAid(bill.transfer_id, bill.beneficiary, self.ctx.code, bill.aid_requested_fen)

    def _seen_before(self, bill: Bill, op: SubmitBill) -> Effects:
        same = (bill.flow, bill.beneficiary, bill.amount_fen, bill.reply_to) == (
            Flow.COPAY,
            op.beneficiary,
            op.amount_fen,
            op.reply_to,
        )
        if not same:
            detail = f"transfer {op.transfer_id} exists with different fields"
            refusal = BillOutcome(
                op.transfer_id, 0, op.amount_fen, "", ReasonCode.DUPLICATE_MISMATCH, detail
            )
            return Effects([Outgoing(op.reply_to, refusal)])
        if bill.state is BillState.SETTLED:
            return Effects([Outgoing(bill.reply_to, outcome_of(bill))])
        # Still under way: ask again (the clearinghouse re-sends its current step).
        return Effects([Outgoing(CLEARINGHOUSE, self.aid_request(bill))])

    def _refusal(self, op: SubmitBill) -> tuple[ReasonCode, str] | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT, f"amount {op.amount_fen} fen"
        insurance = self.store.insurance_of(op.beneficiary)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON, f"{op.beneficiary} is not known in {self.ctx.code}"
        if insurance is Insurance.NONE:
            return ReasonCode.BENEFICIARY_NOT_INSURED, f"{op.beneficiary} is not insured"
        return None

    def _pay_locally(
        self, transfer_id: str, part: str, account: str, up_to_fen: int, now_ms: int
    ) -> int:
        """Pay as much of ``up_to_fen`` as ``account`` has towards the bill; return it."""
        amount = min(self.books.available(account), up_to_fen)
        if amount > 0:
            self.books.transfer(f"{transfer_id}/{part}", account, BILLS_PAID, amount, now_ms)
        return amount

    def _finish_bill(
        self,
        transfer_id: str,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        now_ms: int,
    ) -> Effects:
        """The co-payer's part is known: under co-payer-first, the own account pays the rest."""
        bill = self.store.bill(transfer_id)
        if bill is None or bill.state is BillState.SETTLED:
            return self.ctx.settle(
                transfer_id,
                paid_fen=paid_fen,
                payer_region=payer_region,
                reason=reason,
                detail=detail,
                now_ms=now_ms,
            )
        own_paid = bill.own_paid_fen
        if (
            self.ctx.policy.payment_order is PaymentOrder.COPAYER_FIRST
            and self.store.insurance_of(bill.beneficiary) is Insurance.EMPLOYEE
        ):
            rest = bill.amount_fen - bill.wallet_paid_fen - paid_fen
            own_paid += self._pay_locally(
                transfer_id, "own", person_account(bill.beneficiary), rest, now_ms
            )
        return self.ctx.settle(
            transfer_id,
            paid_fen=paid_fen,
            payer_region=payer_region,
            reason=reason,
            detail=detail,
            now_ms=now_ms,
            own_paid_fen=own_paid,
        )

    # --- money arriving ---

    def credit(self, op: Credit, now_ms: int) -> Effects:
        _, noted = self._record_credit(
            op.transfer_id, op.flow, op.payer_region, op.amount_fen, op.beneficiary, op.year, now_ms
        )
        credited = Effects(
            [Outgoing(CLEARINGHOUSE, Credited(op.transfer_id, self.ctx.code))], noted
        )
        if op.flow is not Flow.COPAY:
            return credited  # the co-payer's region, which asked, reports the outcome
        if self.store.bill(op.transfer_id) is None:
            # Money arrived for a bill this region does not know (e.g. restored from an old
            # backup): the credit is kept in the books; reconciliation shows the gap.
            unknown = Anomaly(op.transfer_id, "credit for an unknown bill")
            return credited + Effects(events=[unknown])
        return credited + self._finish_bill(
            op.transfer_id, op.amount_fen, op.payer_region, None, op.detail, now_ms
        )

    def _record_credit(
        self,
        transfer_id: str,
        flow: Flow,
        payer_region: str,
        amount_fen: int,
        beneficiary: str,
        year: int,
        now_ms: int,
    ) -> tuple[bool, list[AnyEvent]]:
        """Book an incoming transfer once (idempotent by id): whether this booked it (not
        if it was booked already), and the events."""
        known = self.store.credit_amount(transfer_id)
        if known is not None:
            if known != amount_fen:
                what = f"credit of {amount_fen} after {known} was recorded"
                return False, [Anomaly(transfer_id, what)]
            return False, []
        debit = interregion_account(payer_region)
        self.books.open_account(debit, no_overdraft=False)
        if flow is Flow.WALLET:
            target = wallet_account(beneficiary)
            self.books.open_account(target, no_overdraft=True)
        elif flow is Flow.PREMIUM:
            target = PREMIUMS_PAID
            self.store.put_premium(beneficiary, year, transfer_id, "paid", amount_fen, now_ms)
        elif flow is Flow.COPAY:
            target = BILLS_PAID
        else:
            assert_never(flow)
        self.books.transfer(transfer_id, debit, target, amount_fen, now_ms)
        self.store.add_credit(transfer_id, payer_region, amount_fen, now_ms, flow)
        return True, []

    def refuse(self, op: Refuse, now_ms: int) -> Effects:
        self.store.release_premium(op.transfer_id)  # a premium earmarked for it, if any
        bill = self.store.bill(op.transfer_id)
        if bill is not None and bill.flow is Flow.COPAY:
            return self._finish_bill(op.transfer_id, 0, "", op.reason, op.detail, now_ms)
        return self.ctx.settle(
            op.transfer_id,
            paid_fen=0,
            payer_region="",
            reason=op.reason,
            detail=op.detail,
            now_ms=now_ms,
        )

    # --- bindings and premiums ---

    def verify_beneficiary(self, op: VerifyBeneficiary, now_ms: int) -> Effects:
        insurance = self.store.insurance_of(op.beneficiary)
        answer = BeneficiaryVerified(op.binding_id, self.ctx.code, op.beneficiary, insurance)
        return Effects([Outgoing(CLEARINGHOUSE, answer)])

    def check_premium(self, op: CheckPremium, now_ms: int) -> Effects:
        """Quote the premium due and earmark (person, year) so it is never paid twice."""
        code = self.ctx.code
        reason = self._premium_refusal(op.beneficiary, op.year, op.transfer_id)
        if reason is not None:
            return Effects(
                [Outgoing(CLEARINGHOUSE, PremiumQuoted(op.transfer_id, code, 0, reason))]
            )
        amount = self.ctx.policy.resident_premium_fen
        if self.store.premium(op.beneficiary, op.year) is None:
            self.store.put_premium(
                op.beneficiary, op.year, op.transfer_id, "pending", amount, now_ms
            )
        return Effects([Outgoing(CLEARINGHOUSE, PremiumQuoted(op.transfer_id, code, amount))])

    def _premium_refusal(self, psn_no: str, year: int, transfer_id: str) -> ReasonCode | None:
        insurance = self.store.insurance_of(psn_no)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON
        if insurance is not Insurance.RESIDENT:
            return ReasonCode.NOT_RESIDENT_INSURED
        premium = self.store.premium(psn_no, year)
        if premium is not None and premium.transfer_id != transfer_id:
            return ReasonCode.PREMIUM_ALREADY_PAID
        return None

    def pay_premium(self, op: PayPremium, now_ms: int) -> Effects:
        """A resident pays his or her own premium from the wallet, locally."""
        bill = self.store.bill(op.transfer_id)
        if bill is not None:
            return Effects([Outgoing(bill.reply_to, outcome_of(bill))])
        amount = self.ctx.policy.resident_premium_fen
        self.store.add_bill(
            op.transfer_id,
            op.psn_no,
            amount,
            op.reply_to,
            now_ms,
            flow=Flow.PREMIUM,
            payer=op.psn_no,
            counterparty_region=self.ctx.code,
            year=op.year,
        )
        started = Effects(events=[TransferStarted(op.transfer_id, Flow.PREMIUM)])
        reason = self._premium_refusal(op.psn_no, op.year, op.transfer_id)
        wallet = wallet_account(op.psn_no)
        if reason is None and self.books.available(wallet) < amount:
            reason = ReasonCode.INSUFFICIENT_BALANCE
        if reason is not None:
            return started + self.ctx.settle(
                op.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=reason,
                detail=f"premium {op.year}",
                now_ms=now_ms,
            )
        self.books.transfer(op.transfer_id, wallet, PREMIUMS_PAID, amount, now_ms)
        self.store.put_premium(op.psn_no, op.year, op.transfer_id, "paid", amount, now_ms)
        self.store.record_local_payment(
            op.transfer_id, own_paid_fen=0, wallet_paid_fen=amount, aid_requested_fen=0
        )
        return started + self.ctx.settle(
            op.transfer_id,
            paid_fen=0,
            payer_region="",
            reason=None,
            detail=f"premium {op.year} paid from the wallet",
            now_ms=now_ms,
        )

    def repair(self, op: Repair, now_ms: int) -> tuple[bool, Effects]:
        """Book a committed incoming transfer this region lost (idempotent); always
        repaired, with these effects (a co-payment's bill is finished: its submitter is
        told, as the lost credit would have)."""
        booked, events = self._record_credit(
            op.transfer_id,
            op.flow,
            op.counterparty_region,
            op.amount_fen,
            op.psn_no,
            op.year,
            now_ms,
        )
        bill = self.store.bill(op.transfer_id)
        if booked and op.flow is Flow.COPAY and bill is not None:
            finished = self._finish_bill(
                op.transfer_id,
                op.amount_fen,
                op.counterparty_region,
                None,
                "repaired by reconciliation",
                now_ms,
            )
            return True, Effects(events=events) + finished
        return True, Effects(events=events)
