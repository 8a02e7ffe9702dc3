"""Requests a region forwarded for a client, sent again until their outcome is known.

A bill's ``RequestAid``, a co-payer's ``RequestTransfer`` (wallet transfer, premium) or
binding request (``ProposeBinding``, ``WithdrawBinding``), a bill at the region of care
(``RequestAwaySettlement``) or a registration of care away from home
(``ProposeAwayRegistration``, ``WithdrawAwayRegistration``) can be lost on the way:
dead-lettered in a crash loop, or published by nobody after a crash between commit and
publish. The clearinghouse is idempotent by transfer (or binding) id and answers a repeat
with the current step, or the decision, of what it knows: asking again is harmless, and
it revives a request it never saw. The timer is a column of the request's row
(``resend_at_ms``): a region that restarts keeps it; settling stops it.
"""

from __future__ import annotations

from contracts.effects import AnyEvent, Effects, Outgoing, Retried
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Operation
from contracts.vocabulary import Flow
from regions.away_registration import AwayRegistrationRequests
from regions.care import CareSide
from regions.context import RegionContext, resend_delay_ms
from regions.payee import PayeeSide
from regions.requests import CopayerRequests

REQUEST_AID, REQUEST_TRANSFER, BINDING_REQUEST = "request_aid", "request_transfer", "binding"
REQUEST_AWAY, AWAY_REGISTRATION = "request_away_settlement", "away_registration"
"""The steps a region re-sends, as ``Retried`` names them."""


class Resender:
    """Re-sends, from the region's timer, what has waited too long for an outcome."""

    def __init__(
        self,
        ctx: RegionContext,
        payee: PayeeSide,
        requests: CopayerRequests,
        care: CareSide,
        away: AwayRegistrationRequests,
    ) -> None:
        self.ctx = ctx
        self.care = care
        self.away = away
        self.store = ctx.store
        self.payee = payee
        self.requests = requests

    def resend_due(self, now_ms: int) -> Effects:
        out: list[Outgoing] = []
        events: list[AnyEvent] = []
        for bill, resends in self.store.requests_due(now_ms):
            request: Operation
            if bill.flow == Flow.COPAY:
                request, step = self.payee.aid_request(bill), REQUEST_AID
            elif bill.flow == Flow.AWAY:
                request, step = self.care.settlement_request(bill), REQUEST_AWAY
            else:
                request, step = self.requests.transfer_request(bill), REQUEST_TRANSFER
            self.store.resent(bill.transfer_id, now_ms + resend_delay_ms(resends + 1))
            events.append(Retried(bill.transfer_id, step, CLEARINGHOUSE))
            out.append(Outgoing(CLEARINGHOUSE, request))
        for binding, resends in self.store.binding_requests_due(now_ms):
            rid = binding.request_id
            self.store.binding_request_resent(rid, now_ms + resend_delay_ms(resends + 1))
            events.append(Retried(rid, BINDING_REQUEST, CLEARINGHOUSE))
            out.append(Outgoing(CLEARINGHOUSE, self.requests.binding_request_op(binding)))
        for away, resends in self.store.away_requests.due(now_ms):
            rid = away.request_id
            self.store.away_requests.resent(rid, now_ms + resend_delay_ms(resends + 1))
            events.append(Retried(rid, AWAY_REGISTRATION, CLEARINGHOUSE))
            out.append(Outgoing(CLEARINGHOUSE, self.away.directory_op(away)))
        return Effects(out, events)
