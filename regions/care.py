"""The region of care (就医地): bills of persons insured elsewhere (异地就医直接结算).

A hospital sends the bill to the region where the care happened. The region's own
catalogue (就医地目录, its policy's ``catalogue_share_permille``) says which part of it
personal accounts may pay; the rest is left to cash. The clearinghouse checks the
registration of care away from home and has the in-catalogue part paid under the insured
region's policy (参保地政策): the beneficiary's wallet, own account and co-payer, each a leg
credited here; then it says what each paid, and the hospital hears the outcome from here.
"""

from __future__ import annotations

from contracts.effects import Effects, Outgoing, TransferStarted
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    AwaySettled,
    BillOutcome,
    RequestAwaySettlement,
    SubmitAwayBill,
)
from contracts.policy import FULL_CATALOGUE_PERMILLE
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow
from regions.context import RegionContext, outcome_of, resend_delay_ms
from regions.store import Bill, BillState


def in_catalogue_fen(amount_fen: int, share_permille: int) -> int:
    """The part of a bill within a catalogue covering ``share_permille`` of it (rounded down:
    what personal accounts may pay is never more than the catalogue allows)."""
    return amount_fen * share_permille // FULL_CATALOGUE_PERMILLE


class CareSide:
    """Handlers for bills of care away from home submitted at this region."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def submit_away_bill(self, op: SubmitAwayBill, now_ms: int) -> Effects:
        bill = self.store.bill(op.transfer_id)
        if bill is not None:
            return self._seen_before(bill, op)
        self.store.add_bill(
            op.transfer_id,
            op.beneficiary,
            op.amount_fen,
            op.reply_to,
            now_ms,
            flow=Flow.AWAY,
            counterparty_region=op.insured_region,
            resend_at_ms=now_ms + resend_delay_ms(0),
        )
        started = Effects(events=[TransferStarted(op.transfer_id, Flow.AWAY)])
        refusal = self._refusal(op)
        if refusal is not None:
            return started + self.ctx.settle(
                op.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=refusal[0],
                detail=refusal[1],
                now_ms=now_ms,
            )
        eligible = in_catalogue_fen(op.amount_fen, self.ctx.policy.catalogue_share_permille)
        self.store.record_local_payment(
            op.transfer_id, own_paid_fen=0, wallet_paid_fen=0, aid_requested_fen=eligible
        )
        if eligible == 0:
            return started + self.ctx.settle(
                op.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=None,
                detail="nothing of the bill is within the catalogue of the region of care",
                now_ms=now_ms,
            )
        bill = self.store.bill(op.transfer_id)
        assert bill is not None
        return Effects([Outgoing(CLEARINGHOUSE, self.settlement_request(bill))], started.events)

    def _refusal(self, op: SubmitAwayBill) -> tuple[ReasonCode, str] | None:
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT, f"amount {op.amount_fen} fen"
        if op.insured_region == self.ctx.code:
            return ReasonCode.CARE_NOT_AWAY, f"{op.beneficiary} is insured here"
        if not self.ctx.policy.direct_settlement:
            detail = f"region {self.ctx.code} does not settle care away from home directly"
            return ReasonCode.CARE_REGION_NOT_ENABLED, detail
        return None

    def settlement_request(self, bill: Bill) -> RequestAwaySettlement:
        """The request of a bill under way, as first sent."""
        return RequestAwaySettlement(
            bill.transfer_id,
            bill.beneficiary,
            bill.counterparty_region,
            self.ctx.code,
            bill.aid_requested_fen,
        )

    def _seen_before(self, bill: Bill, op: SubmitAwayBill) -> Effects:
        same = (
            bill.flow,
            bill.beneficiary,
            bill.counterparty_region,
            bill.amount_fen,
            bill.reply_to,
        ) == (Flow.AWAY, op.beneficiary, op.insured_region, op.amount_fen, op.reply_to)
        if not same:
            detail = f"transfer {op.transfer_id} exists with different fields"
            refusal = BillOutcome(
                op.transfer_id,
                0,
                op.amount_fen,
                "",
                ReasonCode.DUPLICATE_MISMATCH,
                detail,
                flow=Flow.AWAY,
            )
            return Effects([Outgoing(op.reply_to, refusal)])
        if bill.state is BillState.SETTLED:
            return Effects([Outgoing(bill.reply_to, outcome_of(bill))])
        return Effects([Outgoing(CLEARINGHOUSE, self.settlement_request(bill))])

    def away_settled(self, op: AwaySettled, now_ms: int) -> Effects:
        """Every leg is credited here already: the bill's outcome, once."""
        bill = self.store.bill(op.transfer_id)
        if bill is not None and bill.state is BillState.REQUESTED:
            self.store.record_local_payment(
                op.transfer_id,
                own_paid_fen=op.own_paid_fen,
                wallet_paid_fen=op.wallet_paid_fen,
                aid_requested_fen=bill.aid_requested_fen,
            )
        return self.ctx.settle(
            op.transfer_id,
            paid_fen=op.copayer_paid_fen,
            payer_region=op.copayer_region,
            reason=op.reason,
            detail=op.detail,
            now_ms=now_ms,
            own_paid_fen=op.own_paid_fen,
        )
