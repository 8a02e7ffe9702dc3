"""What a co-payer asks of his or her own region: bindings, wallet transfers, premiums.

Every request passes the identity check here (a secret stands in for face or password),
then goes to the clearinghouse; the region answers its submitter exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.effects import Effects, Outgoing, TransferFinished, TransferStarted
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    BillOutcome,
    BindingDecided,
    BindingOutcome,
    Completed,
    ProposeBinding,
    RequestBinding,
    RequestPremiumPayment,
    RequestTransfer,
    RequestWalletTransfer,
    RevokeBinding,
    WithdrawBinding,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Flow, Insurance, Relationship
from regions.context import RegionContext, day_start_ms, outcome_of, resend_delay_ms
from regions.store import Bill, BillState, BindingRequest

BINDING = "binding"
"""The label of binding requests among the transfers' flows (in events and metrics)."""


class CopayerRequests:
    """Handlers for co-payers' own requests, made at the region that insures them."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def _identity_refusal(self, psn_no: str, secret: str) -> tuple[ReasonCode, str] | None:
        insurance = self.store.insurance_of(psn_no)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON, f"{psn_no} is not known in {self.ctx.code}"
        if not self.store.secret_matches(psn_no, secret):
            return ReasonCode.IDENTITY_CHECK_FAILED, f"identity check failed for {psn_no}"
        if insurance is not Insurance.EMPLOYEE:
            return ReasonCode.NO_PERSONAL_ACCOUNT, f"{psn_no} has no personal account"
        return None

    # --- bindings ---

    def request_binding(self, op: RequestBinding, now_ms: int) -> Effects:
        fingerprint = "|".join(
            ["bind", op.copayer, op.beneficiary, op.beneficiary_region, op.relationship]
        )
        known = self._known_binding_request(op.request_id, fingerprint, op.reply_to)
        if known is not None:
            return known
        self.store.add_binding_request(
            op.request_id,
            "bind",
            op.copayer,
            op.request_id,
            op.reply_to,
            fingerprint,
            beneficiary=op.beneficiary,
            beneficiary_region=op.beneficiary_region,
            relationship=op.relationship.value,
            resend_at_ms=now_ms + resend_delay_ms(0),  # stopped when settled
        )
        started = Effects(events=[TransferStarted(op.request_id, BINDING)])
        refusal = self._identity_refusal(op.copayer, op.secret)
        if refusal is not None:
            return started + self._settle_binding(op.request_id, op.request_id, *refusal, now_ms)
        request = self.store.binding_request(op.request_id)
        assert request is not None
        return Effects([Outgoing(CLEARINGHOUSE, self.binding_request_op(request))], started.events)

    def revoke_binding(self, op: RevokeBinding, now_ms: int) -> Effects:
        fingerprint = "|".join(["revoke", op.copayer, op.binding_id])
        known = self._known_binding_request(op.request_id, fingerprint, op.reply_to)
        if known is not None:
            return known
        self.store.add_binding_request(
            op.request_id,
            "revoke",
            op.copayer,
            op.binding_id,
            op.reply_to,
            fingerprint,
            resend_at_ms=now_ms + resend_delay_ms(0),  # stopped when settled
        )
        started = Effects(events=[TransferStarted(op.request_id, BINDING)])
        refusal = self._identity_refusal(op.copayer, op.secret)
        if refusal is not None and refusal[0] is not ReasonCode.NO_PERSONAL_ACCOUNT:
            return started + self._settle_binding(op.request_id, op.binding_id, *refusal, now_ms)
        request = self.store.binding_request(op.request_id)
        assert request is not None
        return Effects([Outgoing(CLEARINGHOUSE, self.binding_request_op(request))], started.events)

    def binding_request_op(self, request: BindingRequest) -> ProposeBinding | WithdrawBinding:
        """What a binding request under way asks of the clearinghouse, as first sent."""
        if request.kind == "revoke":
            return WithdrawBinding(
                request.request_id, request.binding_id, request.copayer, self.ctx.code
            )
        return ProposeBinding(
            request.request_id,
            request.copayer,
            self.ctx.code,
            request.beneficiary,
            request.beneficiary_region,
            Relationship(request.relationship),
        )

    def _known_binding_request(
        self, request_id: str, fingerprint: str, reply_to: str
    ) -> Effects | None:
        request = self.store.binding_request(request_id)
        if request is None:
            return None
        if request.fingerprint != fingerprint:
            detail = f"request {request_id} exists with different fields"
            outcome = BindingOutcome(request_id, "", ReasonCode.DUPLICATE_MISMATCH, detail)
            return Effects([Outgoing(reply_to, outcome)])
        if request.state is BillState.SETTLED:
            return Effects([Outgoing(request.reply_to, _binding_outcome(request))])
        # Under way: ask again, as for transfers (the first may have been lost); the
        # clearinghouse answers a known one with its decision or its current step.
        return Effects([Outgoing(CLEARINGHOUSE, self.binding_request_op(request))])

    def binding_decided(self, op: BindingDecided, now_ms: int) -> Effects:
        return self._settle_binding(op.request_id, op.binding_id, op.reason, op.detail, now_ms)

    def _settle_binding(
        self,
        request_id: str,
        binding_id: str,
        reason: ReasonCode | None,
        detail: str,
        now_ms: int,
    ) -> Effects:
        request = self.store.binding_request(request_id)
        if request is None:
            return Effects()
        if request.state is BillState.SETTLED:
            return Effects([Outgoing(request.reply_to, _binding_outcome(request))])
        self.store.settle_binding_request(request_id, binding_id, reason, detail)
        outcome = COMMITTED if reason is None else reason.value
        finished = TransferFinished(request_id, BINDING, outcome, now_ms, now_ms, 0, detail)
        settled = self.store.binding_request(request_id)
        assert settled is not None
        return Effects([Outgoing(settled.reply_to, _binding_outcome(settled))], [finished])

    # --- wallet transfers and premiums ---

    def request_wallet_transfer(self, op: RequestWalletTransfer, now_ms: int) -> Effects:
        request = RequestTransfer(
            op.transfer_id,
            Flow.WALLET,
            op.copayer,
            self.ctx.code,
            op.beneficiary,
            op.beneficiary_region,
            op.amount_fen,
        )
        return self._ask_clearinghouse(
            request, op.secret, op.reply_to, now_ms, lambda: self._wallet_refusal(op, now_ms)
        )

    def _ask_clearinghouse(
        self,
        request: RequestTransfer,
        secret: str,
        reply_to: str,
        now_ms: int,
        also_check: Callable[[], tuple[ReasonCode, str] | None] | None = None,
    ) -> Effects:
        """A co-payer's transfer request: answered again if seen, else checked here
        (identity, then ``also_check``), recorded, and sent to the clearinghouse."""
        fields = (
            request.flow,
            request.beneficiary,
            request.amount_fen,
            reply_to,
            request.payer,
            request.beneficiary_region,
            request.year,
        )
        known = self._known_request(request.transfer_id, fields, reply_to, request.amount_fen)
        if known is not None:
            return known
        refusal = self._identity_refusal(request.payer, secret)
        if refusal is None and also_check is not None:
            refusal = also_check()  # before the request is recorded: it must not count itself
        self.store.add_bill(
            request.transfer_id,
            request.beneficiary,
            request.amount_fen,
            reply_to,
            now_ms,
            flow=request.flow,
            payer=request.payer,
            counterparty_region=request.beneficiary_region,
            year=request.year,
            resend_at_ms=now_ms + resend_delay_ms(0),  # stopped when settled
        )
        started = Effects(events=[TransferStarted(request.transfer_id, request.flow)])
        if refusal is not None:
            return started + self.ctx.settle(
                request.transfer_id,
                paid_fen=0,
                payer_region="",
                reason=refusal[0],
                detail=refusal[1],
                now_ms=now_ms,
            )
        return Effects([Outgoing(CLEARINGHOUSE, request)], started.events)

    def _wallet_refusal(
        self, op: RequestWalletTransfer, now_ms: int
    ) -> tuple[ReasonCode, str] | None:
        policy = self.ctx.policy
        if op.amount_fen <= 0:
            return ReasonCode.INVALID_AMOUNT, f"amount {op.amount_fen} fen"
        if not policy.wallet_enabled:
            return ReasonCode.WALLET_NOT_ENABLED, f"region {self.ctx.code} has no wallet"
        if op.amount_fen > policy.wallet_max_per_transfer_fen:
            return (
                ReasonCode.LIMIT_EXCEEDED,
                f"{op.amount_fen} fen is above the {policy.wallet_max_per_transfer_fen} fen"
                " limit per transfer",
            )
        today = self.store.wallet_requests_since(op.copayer, day_start_ms(now_ms))
        if today >= policy.wallet_max_transfers_per_day:
            return (
                ReasonCode.LIMIT_EXCEEDED,
                f"{today} wallet transfers today; at most {policy.wallet_max_transfers_per_day}",
            )
        return None

    def request_premium_payment(self, op: RequestPremiumPayment, now_ms: int) -> Effects:
        # The amount is the beneficiary's region's to say (its policy's premium).
        request = RequestTransfer(
            op.transfer_id,
            Flow.PREMIUM,
            op.copayer,
            self.ctx.code,
            op.beneficiary,
            op.beneficiary_region,
            0,
            op.year,
        )
        return self._ask_clearinghouse(request, op.secret, op.reply_to, now_ms)

    def _known_request(
        self,
        transfer_id: str,
        fields: tuple[Flow, str, int, str, str, str, int],
        reply_to: str,
        amount_fen: int,
    ) -> Effects | None:
        bill = self.store.bill(transfer_id)
        if bill is None:
            return None
        known = (
            bill.flow,
            bill.beneficiary,
            bill.amount_fen,
            bill.reply_to,
            bill.payer,
            bill.counterparty_region,
            bill.year,
        )
        if known != fields:
            detail = f"transfer {transfer_id} exists with different fields"
            refusal = BillOutcome(
                transfer_id,
                0,
                amount_fen,
                "",
                ReasonCode.DUPLICATE_MISMATCH,
                detail,
                flow=fields[0],
            )
            return Effects([Outgoing(reply_to, refusal)])
        if bill.state is BillState.SETTLED:
            return Effects([Outgoing(bill.reply_to, outcome_of(bill))])
        # Under way: ask again (our first request may have been lost in a crash between
        # commit and publish); the clearinghouse re-sends its current step.
        return Effects([Outgoing(CLEARINGHOUSE, self.transfer_request(bill))])

    def transfer_request(self, bill: Bill) -> RequestTransfer:
        """The request of a wallet transfer or premium payment under way, as first sent."""
        return RequestTransfer(
            bill.transfer_id,
            bill.flow,
            bill.payer,
            self.ctx.code,
            bill.beneficiary,
            bill.counterparty_region,
            bill.amount_fen,
            bill.year,
        )

    def completed(self, op: Completed, now_ms: int) -> Effects:
        return self.ctx.settle(
            op.transfer_id,
            paid_fen=op.amount_fen,
            payer_region=self.ctx.code,
            reason=None,
            detail="",
            now_ms=now_ms,
        )


def _binding_outcome(request: BindingRequest) -> BindingOutcome:
    return BindingOutcome(request.request_id, request.binding_id, request.reason, request.detail)
