"""Requests a region forwarded for a client, sent again until their outcome is known.

A bill's ``RequestAid``, or a co-payer's ``RequestTransfer`` (wallet transfer, premium),
can be lost on the way: dead-lettered in a crash loop, or published by nobody after a
crash between commit and publish. The clearinghouse is idempotent by transfer id and
answers a repeat with the current step of the transfer it knows, so asking again is
harmless, and it revives a request it never saw. The timer is a column of the request's
row (``bills.resend_at_ms``): a region that restarts keeps it; settling stops it.
"""

from __future__ import annotations

from contracts.effects import Outgoing, Retried
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Operation
from regions.context import RegionContext, resend_delay_ms
from regions.payee import COPAY, PayeeSide
from regions.requests import CopayerRequests

REQUEST_AID, REQUEST_TRANSFER = "request_aid", "request_transfer"
"""The steps a region re-sends, as ``Retried`` names them."""


class Resender:
    """Re-sends, from the region's timer, what has waited too long for an outcome."""

    def __init__(self, ctx: RegionContext, payee: PayeeSide, requests: CopayerRequests) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.payee = payee
        self.requests = requests

    def resend_due(self, now_ms: int) -> list[Outgoing]:
        out: list[Outgoing] = []
        for bill, resends in self.store.requests_due(now_ms):
            request: Operation
            if bill.flow == COPAY:
                request, step = self.payee.aid_request(bill), REQUEST_AID
            else:
                request, step = self.requests.transfer_request(bill), REQUEST_TRANSFER
            self.store.resent(bill.transfer_id, now_ms + resend_delay_ms(resends + 1))
            self.ctx.events.append(Retried(bill.transfer_id, step, CLEARINGHOUSE))
            out.append(Outgoing(CLEARINGHOUSE, request))
        return out
