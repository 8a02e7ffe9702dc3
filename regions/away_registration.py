"""What a beneficiary asks of the insured region before care away from home: to register
it (异地就医备案) for a region of care and a period, or to revoke a registration.

The identity check is here (a secret stands in for face or password); the national
directory decides and records; the region records every request and each of its state
changes, and answers its submitter exactly once (again, when asked again).
"""

from __future__ import annotations

from contracts.effects import Effects, Outgoing, TransferFinished, TransferStarted
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    AwayRegistrationDecided,
    AwayRegistrationOutcome,
    ProposeAwayRegistration,
    RequestAwayRegistration,
    RevokeAwayRegistration,
    WithdrawAwayRegistration,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Insurance
from regions.context import RegionContext, resend_delay_ms
from regions.stores.away_requests import REGISTER, REVOKE, AwayRequest, AwayRequestState

AWAY_REGISTRATION = "away_registration"
"""The label of these requests among the transfers' flows (in events and metrics)."""


class AwayRegistrationRequests:
    """Handlers for registrations of care away from home, at the insured region."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.requests = ctx.store.away_requests

    def _identity_refusal(self, psn_no: str, secret: str) -> tuple[ReasonCode, str] | None:
        insurance = self.store.insurance_of(psn_no)
        if insurance is None:
            return ReasonCode.UNKNOWN_PERSON, f"{psn_no} is not known in {self.ctx.code}"
        if not self.store.secret_matches(psn_no, secret):
            return ReasonCode.IDENTITY_CHECK_FAILED, f"identity check failed for {psn_no}"
        if insurance is Insurance.NONE:
            return ReasonCode.BENEFICIARY_NOT_INSURED, f"{psn_no} is not insured"
        return None

    def request_registration(self, op: RequestAwayRegistration, now_ms: int) -> Effects:
        request = AwayRequest(
            op.request_id,
            REGISTER,
            op.beneficiary,
            op.request_id,
            op.care_region,
            op.from_ms,
            op.until_ms,
            op.reply_to,
            AwayRequestState.REQUESTED,
        )
        return self._take(request, op.secret, now_ms)

    def revoke_registration(self, op: RevokeAwayRegistration, now_ms: int) -> Effects:
        request = AwayRequest(
            op.request_id,
            REVOKE,
            op.beneficiary,
            op.registration_id,
            "",
            0,
            0,
            op.reply_to,
            AwayRequestState.REQUESTED,
        )
        return self._take(request, op.secret, now_ms)

    def _take(self, request: AwayRequest, secret: str, now_ms: int) -> Effects:
        known = self.requests.get(request.request_id)
        if known is not None:
            return self._seen_before(known, request)
        self.requests.add(request, now_ms, resend_at_ms=now_ms + resend_delay_ms(0))
        started = Effects(events=[TransferStarted(request.request_id, AWAY_REGISTRATION)])
        refusal = self._identity_refusal(request.beneficiary, secret)
        if refusal is not None:
            return started + self._settle(request.request_id, *refusal, now_ms)
        return Effects([Outgoing(CLEARINGHOUSE, self.directory_op(request))], started.events)

    def _seen_before(self, known: AwayRequest, request: AwayRequest) -> Effects:
        same = (
            known.kind,
            known.beneficiary,
            known.registration_id,
            known.care_region,
            known.from_ms,
            known.until_ms,
            known.reply_to,
        ) == (
            request.kind,
            request.beneficiary,
            request.registration_id,
            request.care_region,
            request.from_ms,
            request.until_ms,
            request.reply_to,
        )
        if not same:
            detail = f"request {request.request_id} exists with different fields"
            refusal = AwayRegistrationOutcome(
                request.request_id, "", ReasonCode.DUPLICATE_MISMATCH, detail
            )
            return Effects([Outgoing(request.reply_to, refusal)])
        if known.state is not AwayRequestState.REQUESTED:
            return Effects([Outgoing(known.reply_to, _outcome(known))])
        # Under way: ask the directory again (the first may have been lost).
        return Effects([Outgoing(CLEARINGHOUSE, self.directory_op(known))])

    def directory_op(
        self, request: AwayRequest
    ) -> ProposeAwayRegistration | WithdrawAwayRegistration:
        """What a request under way asks of the national directory, as first sent."""
        if request.kind == REVOKE:
            return WithdrawAwayRegistration(
                request.request_id, request.registration_id, request.beneficiary, self.ctx.code
            )
        return ProposeAwayRegistration(
            request.registration_id,
            request.beneficiary,
            self.ctx.code,
            request.care_region,
            request.from_ms,
            request.until_ms,
        )

    def registration_decided(self, op: AwayRegistrationDecided, now_ms: int) -> Effects:
        return self._settle(op.request_id, op.reason, op.detail, now_ms)

    def _settle(
        self, request_id: str, reason: ReasonCode | None, detail: str, now_ms: int
    ) -> Effects:
        request = self.requests.get(request_id)
        if request is None:
            return Effects()
        if request.state is not AwayRequestState.REQUESTED:
            return Effects([Outgoing(request.reply_to, _outcome(request))])
        state = AwayRequestState.RECORDED if reason is None else AwayRequestState.REFUSED
        self.requests.settle(request_id, state, reason, detail, now_ms)
        outcome = COMMITTED if reason is None else reason.value
        finished = TransferFinished(
            request_id, AWAY_REGISTRATION, outcome, now_ms, now_ms, 0, detail
        )
        settled = self.requests.get(request_id)
        assert settled is not None
        return Effects([Outgoing(settled.reply_to, _outcome(settled))], [finished])


def _outcome(request: AwayRequest) -> AwayRegistrationOutcome:
    registration_id = request.registration_id if request.reason is None else ""
    return AwayRegistrationOutcome(
        request.request_id, registration_id, request.reason, request.detail
    )
