"""Reconciliation (对账): a region checks the clearinghouse's settlement report.

Totals first; only when they differ, transfer by transfer. A mismatch is reported to
the clearinghouse as a ``Disagreement`` (never absorbed) and the clearinghouse drives
this region to its recorded decision with ``Repair``; the window is then checked again.
"""

from __future__ import annotations

from contracts.effects import AnyEvent, Disagreed, Effects, Outgoing, Repaired
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Disagreement, Reconciled, Repair, SettlementLine, SettlementReport
from regions.context import RegionContext
from regions.payee import PayeeSide
from regions.payer import PayerSide
from regions.store import HoldState, SettlementLineRecord, SettlementReportRecord

MISSING_HERE = "missing_here"
"""The report has the transfer; this region has no record of it."""
AMOUNT_DIFFERS = "amount_differs"
MISSING_THERE = "missing_there"
"""This region has the transfer; no report has it. Checked only for records older than
the previous window's opening: a transfer still under way at a close (posted here, not
yet committed nationally) is reported in a later window and is not a disagreement."""


class Reconciler:
    """Checks settlement reports against this region's own books."""

    def __init__(self, ctx: RegionContext, payer: PayerSide, payee: PayeeSide) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.payer = payer
        self.payee = payee

    def settlement_line(self, op: SettlementLine, now_ms: int) -> Effects:
        self.store.add_settlement_line(
            SettlementLineRecord(
                op.window, op.transfer_id, op.flow, op.payer_region, op.payee_region, op.amount_fen
            )
        )
        return self._reconcile_when_complete(op.window, now_ms)

    def settlement_report(self, op: SettlementReport, now_ms: int) -> Effects:
        self.store.add_settlement_report(
            SettlementReportRecord(
                op.window,
                op.paid_fen,
                op.received_fen,
                op.net_fen,
                op.lines,
                op.opened_at_ms,
                op.closed_at_ms,
                None,
            )
        )
        return self._reconcile_when_complete(op.window, now_ms)

    def _reconcile_when_complete(self, window: int, now_ms: int) -> Effects:
        # Lines and report may arrive in any order and in several messages. Once complete,
        # a redelivered one checks again and re-sends the verdict (it may have been lost).
        report = self.store.settlement_report(window)
        if report is None:
            return Effects()
        lines = self.store.settlement_lines(window)
        if len(lines) < report.lines:
            return Effects()
        return self.reconcile(report, lines, now_ms, again=report.disagreements is not None)

    def reconcile(
        self,
        report: SettlementReportRecord,
        lines: list[SettlementLineRecord],
        now_ms: int,
        again: bool = False,
    ) -> Effects:
        code = self.ctx.code
        mine = {line.transfer_id: self._my_amount(line) for line in lines}
        paid = sum(mine[x.transfer_id] or 0 for x in lines if x.payer_region == code)
        received = sum(mine[x.transfer_id] or 0 for x in lines if x.payee_region == code)
        unreported = self._unreported(report)
        found: list[Disagreement] = []
        if (paid, received) != (report.paid_fen, report.received_fen):
            for line in lines:
                amount = mine[line.transfer_id]
                if amount != line.amount_fen:
                    kind = MISSING_HERE if amount is None else AMOUNT_DIFFERS
                    found.append(
                        Disagreement(
                            report.window,
                            code,
                            line.transfer_id,
                            kind,
                            amount or 0,
                            line.amount_fen,
                        )
                    )
        # Postings no report lists are candidates: only the clearinghouse knows whether
        # such a transfer is still under way (it is then cleared later) or never happened.
        candidates = [
            Disagreement(report.window, code, transfer_id, MISSING_THERE, amount, 0)
            for transfer_id, amount in unreported
        ]
        self.store.mark_reconciled(report.window, len(found), now_ms)
        events: list[AnyEvent] = []
        if not again:  # counted once, however often the verdict is re-sent
            events = [Disagreed(d.window, code, d.transfer_id, d.kind) for d in found]
        verdict = Reconciled(report.window, code, len(found), paid, received)
        out = [Outgoing(CLEARINGHOUSE, op) for op in [*found, *candidates, verdict]]
        return Effects(out, events)

    def _my_amount(self, line: SettlementLineRecord) -> int | None:
        """What this region's books say moved for a reported transfer (None: nothing)."""
        if line.payer_region == self.ctx.code:
            hold = self.store.hold(line.transfer_id)
            if hold is None or hold.state is not HoldState.POSTED:
                return None
            return hold.held_fen
        return self.store.credit_amount(line.transfer_id)

    def _unreported(self, report: SettlementReportRecord) -> list[tuple[str, int]]:
        """Cross-region postings no report has listed though they had a whole window to."""
        previous = self.store.settlement_report(report.window - 1)
        if previous is None:
            return []
        before = previous.opened_at_ms
        reported = self.store.reported_transfer_ids()
        code = self.ctx.code
        mine = [
            (tid, amount)
            for tid, payee, amount in self.store.posted_holds_between(0, before)
            if payee != code
        ]
        mine += [
            (tid, amount)
            for tid, payer, amount in self.store.credits_between(0, before)
            if payer != code
        ]
        return sorted((tid, amount) for tid, amount in mine if tid not in reported)

    def repair(self, op: Repair, now_ms: int) -> Effects:
        side = self.payer if op.role == "payer" else self.payee
        repaired, effects = side.repair(op, now_ms)
        if not repaired:
            return effects
        effects += Effects(events=[Repaired(op.window, self.ctx.code, op.transfer_id)])
        report = self.store.settlement_report(op.window)
        if report is None:
            return effects
        lines = self.store.settlement_lines(op.window)
        return effects + self.reconcile(report, lines, now_ms)
