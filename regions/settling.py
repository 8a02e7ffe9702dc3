"""Booking a window's settlement (清算) against this region's fund.

The clearinghouse's ``Settle`` says the window's net (received less paid), how many lines
the window has for this region, and the top-up of the advance. The region books from
the lines it was sent, counterparty by counterparty, once it has them all:

- what it owes region B for the window leaves ``interregion:B`` for its advance
  (``settlement:advance``), and what B owes it arrives from the advance, so the window's
  positions are paid and the advance moved by the net;
- the top-up moves from its fund (``settlement:fund``) into the advance (a negative
  top-up back to the fund).

It checks the clearinghouse's net against its lines (and against the window's report,
when it has it) before booking; a mismatch is an anomaly and nothing is booked (the
clearinghouse keeps the settlement issued, so it stays visible). Every booking is
idempotent by window: a re-sent ``Settle`` books nothing more and answers again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Settle, SettlementBooked
from contracts.settlement_states import (
    SettlementEvent,
    SettlementState,
    SettlementStateError,
    settlement_transition,
)
from regions.context import RegionContext
from regions.store import (
    SETTLEMENT_ADVANCE,
    SETTLEMENT_FUND,
    FundSettlementRecord,
    SettlementLineRecord,
    interregion_account,
)


def settlement_transfer_id(window: int, counterparty: str) -> str:
    """The journal id of a window's settlement with one counterparty region."""
    return f"settle:{window}:{counterparty}"


def top_up_transfer_id(window: int) -> str:
    return f"topup:{window}"


def bilateral_amounts(code: str, lines: list[SettlementLineRecord]) -> dict[str, int]:
    """Counterparty -> what ``code`` paid it less what it paid ``code``, over the lines."""
    owed: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.payer_region == code:
            owed[line.payee_region] += line.amount_fen
        elif line.payee_region == code:
            owed[line.payer_region] -= line.amount_fen
    return dict(owed)


class FundBooking:
    """Books each closed window's settlement once, when its lines are all here."""

    def __init__(self, ctx: RegionContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.records = ctx.store.fund_settlements
        self.books = ctx.books

    def settle(self, op: Settle, now_ms: int) -> Effects:
        code = self.ctx.code
        if op.region != code:
            return Effects(events=[Anomaly("", f"settlement for {op.region} sent to {code}")])
        record = self.records.get(op.window)
        if record is not None and (op.net_fen, op.top_up_fen) != (
            record.net_fen,
            record.top_up_fen,
        ):
            what = (
                f"window {op.window} settled again at net {op.net_fen}, top-up"
                f" {op.top_up_fen}; first {record.net_fen}, {record.top_up_fen}"
            )
            return Effects(events=[Anomaly("", what)])
        lines = self.store.settlement_lines(op.window)
        complete = len(lines) >= op.lines
        event = SettlementEvent.INSTRUCTED_COMPLETE if complete else SettlementEvent.INSTRUCTED
        state = SettlementState.ABSENT if record is None else record.state
        try:
            next_state = settlement_transition(op.window, code, state, event)
        except SettlementStateError as error:
            return Effects(events=[Anomaly("", str(error))])
        if state is SettlementState.BOOKED:
            assert record is not None
            return self._answer(record)  # asked again: the same answer (it may have been lost)
        if record is None:
            record = FundSettlementRecord(
                op.window,
                op.net_fen,
                op.lines,
                op.top_up_fen,
                op.advance_fen,
                SettlementState.AWAITING_LINES,
                now_ms,
                None,
            )
            if next_state is SettlementState.AWAITING_LINES:
                self.records.add(record, event)
                return Effects()
        if next_state is SettlementState.BOOKED:
            return self._book(record, lines, event, now_ms)
        return Effects()

    def lines_arrived(self, window: int, now_ms: int) -> Effects:
        """A line or report of ``window`` arrived: book a settlement that waited for it."""
        record = self.records.get(window)
        if record is None or record.state is not SettlementState.AWAITING_LINES:
            return Effects()
        lines = self.store.settlement_lines(window)
        if len(lines) < record.lines:
            return Effects()
        return self._book(record, lines, SettlementEvent.LINES_COMPLETE, now_ms)

    def _book(
        self,
        record: FundSettlementRecord,
        lines: list[SettlementLineRecord],
        event: SettlementEvent,
        now_ms: int,
    ) -> Effects:
        code, window = self.ctx.code, record.window
        owed = bilateral_amounts(code, lines)
        net = -sum(owed.values())
        report = self.store.settlement_report(window)
        if net != record.net_fen or (report is not None and report.net_fen != record.net_fen):
            reported = "" if report is None else f", its report {report.net_fen}"
            what = (
                f"window {window}: settlement at net {record.net_fen}; the lines add up to"
                f" {net}{reported}: not booked"
            )
            return Effects(events=[Anomaly("", what)])
        books = self.books
        books.open_account(SETTLEMENT_ADVANCE, no_overdraft=False)
        books.open_account(SETTLEMENT_FUND, no_overdraft=False)
        for counterparty, amount in sorted(owed.items()):
            if amount == 0:
                continue
            position = interregion_account(counterparty)
            books.open_account(position, no_overdraft=False)
            tid = settlement_transfer_id(window, counterparty)
            if amount > 0:  # owed to the counterparty: paid from the advance
                books.transfer(tid, position, SETTLEMENT_ADVANCE, amount, now_ms)
            else:  # owed by it: paid into the advance
                books.transfer(tid, SETTLEMENT_ADVANCE, position, -amount, now_ms)
        top_up = record.top_up_fen
        if top_up > 0:
            books.transfer(
                top_up_transfer_id(window), SETTLEMENT_ADVANCE, SETTLEMENT_FUND, top_up, now_ms
            )
        elif top_up < 0:
            books.transfer(
                top_up_transfer_id(window), SETTLEMENT_FUND, SETTLEMENT_ADVANCE, -top_up, now_ms
            )
        if self.records.get(window) is None:  # booked as soon as told: one row, booked
            booked = replace(record, state=SettlementState.BOOKED, booked_at_ms=now_ms)
            self.records.add(booked, event)
        else:
            self.records.mark_booked(window, event, now_ms)
        return self._answer(record)

    def _answer(self, record: FundSettlementRecord) -> Effects:
        booked = SettlementBooked(record.window, self.ctx.code, record.net_fen, record.top_up_fen)
        return Effects([Outgoing(CLEARINGHOUSE, booked)])
