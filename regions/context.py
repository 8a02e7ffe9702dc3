"""What every part of a region's core shares: its code, store and policy."""

from __future__ import annotations

from contracts.effects import Effects, Outgoing, TransferFinished
from contracts.operations import BillOutcome
from contracts.policy import Policy
from contracts.reasons import COMMITTED, ReasonCode
from regions.store import Bill, BillState, RegionStore

DAY_MS = 86_400_000
CHINA_OFFSET_MS = 8 * 3_600_000
"""Days for wallet limits are calendar days in China Standard Time (UTC+8)."""

RESEND_FIRST_MS = 5_000
"""A request forwarded to the clearinghouse with no outcome after this long is sent
again (the first may have been lost); the wait doubles per re-send, up to ``RESEND_MAX_MS``."""
RESEND_MAX_MS = 60_000


def resend_delay_ms(resends: int) -> int:
    """How long to wait for an outcome after the first send (0) or the n-th re-send."""
    return min(RESEND_FIRST_MS << min(resends, 8), RESEND_MAX_MS)


def day_start_ms(now_ms: int) -> int:
    """The start of the China calendar day that contains ``now_ms``."""
    return (now_ms + CHINA_OFFSET_MS) // DAY_MS * DAY_MS - CHINA_OFFSET_MS


class RegionContext:
    """Shared state of one region's core parts (memory only caches what storage holds)."""

    def __init__(self, code: str, store: RegionStore) -> None:
        self.code = code
        self.store = store
        self.books = store.books
        self._policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = self.store.policy()
        return self._policy

    def forget_policy(self) -> None:
        self._policy = None

    def settle(
        self,
        transfer_id: str,
        *,
        paid_fen: int,
        payer_region: str,
        reason: ReasonCode | None,
        detail: str,
        now_ms: int,
        own_paid_fen: int | None = None,
    ) -> Effects:
        """Record a request's final outcome once and tell its submitter (again if asked)."""
        bill = self.store.bill(transfer_id)
        if bill is None:
            return Effects()
        if bill.state is BillState.SETTLED:
            return Effects([Outgoing(bill.reply_to, outcome_of(bill))])
        self.store.settle_bill(
            transfer_id,
            paid_fen=paid_fen,
            payer_region=payer_region,
            reason=reason,
            detail=detail,
            at_ms=now_ms,
            own_paid_fen=own_paid_fen,
        )
        settled = bill.settled(paid_fen, payer_region, reason, detail, own_paid_fen)
        finished = TransferFinished(
            transfer_id,
            settled.flow,
            COMMITTED if reason is None else reason.value,
            settled.submitted_at_ms,
            now_ms,
            settled.paid_fen,
            detail,
        )
        return Effects([Outgoing(settled.reply_to, outcome_of(settled))], [finished])


def outcome_of(bill: Bill) -> BillOutcome:
    return BillOutcome(
        bill.transfer_id,
        bill.paid_fen,
        max(0, bill.remaining_fen),
        bill.payer_region,
        bill.reason,
        bill.detail,
        bill.own_paid_fen,
        bill.wallet_paid_fen,
        bill.flow,
    )
