"""Clearing (清算): windows of committed cross-region amounts, net positions, reports,
and the national side of reconciliation (对账): disagreements found by regions are
recorded and repaired by driving the region to the recorded decision.
"""

from __future__ import annotations

from collections import defaultdict

from clearinghouse.store import (
    ClearingEntry,
    ClearinghouseStore,
    DisagreementRecord,
    Transfer,
    TransferState,
    Window,
)
from contracts.effects import Anomaly, AnyEvent, Disagreed, Effects, Outgoing, WindowClosed
from contracts.identifiers import region_address
from contracts.operations import (
    CloseWindow,
    Disagreement,
    QueryWindow,
    Reconciled,
    Repair,
    SettlementLine,
    SettlementReport,
    WindowPosition,
    WindowSummary,
)
from contracts.vocabulary import Flow

MISSING_THERE = "missing_there"


def positions(entries: list[ClearingEntry]) -> dict[str, tuple[int, int]]:
    """Region -> (paid, received) over the entries."""
    paid: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    for e in entries:
        paid[e.payer_region] += e.amount_fen
        received[e.payee_region] += e.amount_fen
    return {r: (paid[r], received[r]) for r in sorted(paid.keys() | received.keys())}


class Clearing:
    """Windows, settlement reports and disagreements, as a plain class over the store."""

    def __init__(self, store: ClearinghouseStore) -> None:
        self.store = store

    def record_commit(self, t: Transfer, now_ms: int) -> None:
        """A committed cross-region transfer joins the open window (a hook of the coordinator)."""
        if t.flow is Flow.AWAY:
            # A bill at a region of care: each leg is a transfer of its own between its
            # payer's region and the region of care (clearinghouse.away).
            for leg in self.store.legs(t.transfer_id):
                if leg.posted_fen and leg.region != t.payee_region:
                    window = self.store.open_window(now_ms)
                    self.store.add_clearing_entry(
                        ClearingEntry(
                            leg.leg_id,
                            window.window,
                            t.flow,
                            leg.region,
                            t.payee_region,
                            leg.posted_fen,
                        )
                    )
            return
        if t.payer_region == t.payee_region:
            return  # within one region: nothing to clear between regions
        window = self.store.open_window(now_ms)
        self.store.add_clearing_entry(
            ClearingEntry(
                t.transfer_id, window.window, t.flow, t.payer_region, t.payee_region, t.posted_fen
            )
        )

    def close_window(self, op: CloseWindow, now_ms: int) -> Effects:
        """Close the open window, send every region its report, open the next window."""
        closed = self.store.window_closed_by(op.request_id)
        if closed is not None:
            # Asked again (perhaps the first reports were lost in a crash before they were
            # published): the same reports and answer again; regions take them idempotently.
            return Effects(self._reports(closed) + self._answer(op.reply_to, closed))
        window = self.store.open_window(now_ms)
        self.store.close_window(window.window, op.request_id, now_ms)
        self.store.open_window(now_ms)
        closed = self.store.window(window.window)
        assert closed is not None
        by_region = positions(self.store.clearing_entries(window.window))
        nets = tuple((r, received - paid) for r, (paid, received) in by_region.items())
        sent = self._reports(closed) + self._answer(op.reply_to, closed)
        return Effects(sent, [WindowClosed(window.window, nets)])

    def _reports(self, window: Window) -> list[Outgoing]:
        """Each registered region's settlement report for a closed window, line by line."""
        entries = self.store.clearing_entries(window.window)
        by_region = positions(entries)
        out: list[Outgoing] = []
        for region in self.store.regions():
            mine = [e for e in entries if region.code in (e.payer_region, e.payee_region)]
            paid, received = by_region.get(region.code, (0, 0))
            address = region_address(region.code)
            out += [
                Outgoing(
                    address,
                    SettlementLine(
                        window.window,
                        e.transfer_id,
                        e.flow,
                        e.payer_region,
                        e.payee_region,
                        e.amount_fen,
                    ),
                )
                for e in mine
            ]
            report = SettlementReport(
                window.window,
                region.code,
                paid,
                received,
                received - paid,
                len(mine),
                window.opened_at_ms,
                window.closed_at_ms or 0,
            )
            out.append(Outgoing(address, report))
        return out

    def _answer(self, reply_to: str, window: Window) -> list[Outgoing]:
        if not reply_to:
            return []
        return [Outgoing(reply_to, op) for op in self.report(window)]

    def report(self, window: Window) -> list[WindowSummary | WindowPosition]:
        """A window's summary and a position for every region it concerns.

        A region takes part when it is registered and enabled now, or has a transfer in
        the window (its money must reconcile, whatever its setting). A disabled region
        without transfers is listed as such and counted apart, so the count reads
        "reconciled out of the regions that take part" and never exceeds it.
        """
        entries = self.store.clearing_entries(window.window)
        checked = self.store.reconciliations(window.window)
        found = self.store.disagreements(window.window)
        by_region = positions(entries)
        enabled = {r.code: r.enabled for r in self.store.regions()}
        codes = sorted(enabled.keys() | by_region.keys())
        taking_part = {code for code in codes if enabled.get(code, False) or code in by_region}
        summary = WindowSummary(
            window.window,
            window.state,
            window.opened_at_ms,
            window.closed_at_ms or 0,
            len(entries),
            sum(e.amount_fen for e in entries),
            len(taking_part),
            len(taking_part & checked.keys()),
            len(found),
            sum(1 for d in found if d.state == "repaired"),
            len(codes) - len(taking_part),
        )
        lines: list[WindowSummary | WindowPosition] = [summary]
        for region in codes:
            paid, received = by_region.get(region, (0, 0))
            lines.append(
                WindowPosition(
                    window.window,
                    region,
                    paid,
                    received,
                    received - paid,
                    region in checked,
                    checked.get(region, 0),
                    region in taking_part,
                )
            )
        return lines

    def query_window(self, op: QueryWindow, now_ms: int) -> Effects:
        window = (
            self.store.window(op.window)
            if op.window
            else self.store.latest_closed_window() or self.store.open_window(now_ms)
        )
        if window is None:
            summary = WindowSummary(op.window, "unknown", 0, 0, 0, 0, 0, 0, 0, 0)
            return Effects([Outgoing(op.reply_to, summary)])
        return Effects(self._answer(op.reply_to, window))

    def reconciled(self, op: Reconciled, now_ms: int) -> Effects:
        self.store.put_reconciliation(
            op.window, op.region, op.disagreements, op.paid_fen, op.received_fen, now_ms
        )
        if op.disagreements == 0:
            self.store.mark_repaired(op.window, op.region, now_ms)
        return Effects()

    def disagreement(self, op: Disagreement, now_ms: int) -> Effects:
        """Record what a region found, and drive it to the recorded decision."""
        entry = self.store.clearing_entry(op.transfer_id)
        leg = self.store.leg(op.transfer_id)
        transfer = self.store.transfer(op.transfer_id if leg is None else leg.transfer_id)
        # Aborting is decided (a posting there disagrees), though not final.
        matches_a_decision = transfer is not None and (
            transfer.state is TransferState.COMMITTED
            or not (transfer.state.final or transfer.state.decided_abort)
        )
        if op.kind == MISSING_THERE and matches_a_decision:
            # Cleared in another window, or still under way (cleared when it commits):
            # the region's posting matches a decision, so there is nothing to repair.
            return Effects()
        state = "unresolved"
        out: list[Outgoing] = []
        events: list[AnyEvent] = []
        if entry is not None and entry.window == op.window and transfer is not None:
            role = "payer" if op.region == entry.payer_region else "payee"
            payer = transfer.payer if leg is None else leg.payer
            psn = payer if role == "payer" else transfer.beneficiary
            counterparty = entry.payee_region if role == "payer" else entry.payer_region
            repair = Repair(
                op.transfer_id,
                op.window,
                role,
                psn,
                counterparty,
                entry.amount_fen,
                entry.flow,
                transfer.year,
                from_wallet=leg is not None and leg.source == "wallet",
            )
            out.append(Outgoing(region_address(op.region), repair))
            state = "repairing"
        else:
            # The region moved money the clearinghouse never decided to move: this needs a
            # person (a reversing entry is not automated); it stays visible as unresolved.
            events = [
                Anomaly(op.transfer_id, f"region {op.region} has a transfer never committed"),
                Disagreed(op.window, op.region, op.transfer_id, op.kind),
            ]
        self.store.put_disagreement(
            DisagreementRecord(
                op.window, op.region, op.transfer_id, op.kind, op.region_fen, op.report_fen, state
            ),
            now_ms,
        )
        return Effects(out, events)
