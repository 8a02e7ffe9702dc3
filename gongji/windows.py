"""Clearing-window reports as people and machines read them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import QueryWindow, WindowPosition, WindowSummary
from gongji.client import BillClient


@dataclass(slots=True)
class WindowReport:
    summary: WindowSummary
    positions: list[WindowPosition] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        """Regions that take part in the window and have not reconciled it yet."""
        return sorted(p.region for p in self.positions if p.taking_part and not p.reconciled)

    @property
    def complete(self) -> bool:
        """Every position the summary announces has arrived."""
        return len(self.positions) >= self.summary.regions + self.summary.disabled_regions

    def as_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "window": s.window,
            "state": s.state,
            "opened_at_ms": s.opened_at_ms,
            "closed_at_ms": s.closed_at_ms,
            "transfers": s.transfers,
            "amount_fen": s.amount_fen,
            "regions": s.regions,
            "regions_reconciled": s.reconciled_regions,
            "regions_disabled": s.disabled_regions,
            "regions_pending": self.pending,
            "disagreements": s.disagreements,
            "repaired": s.repaired,
            "net_sum_fen": sum(p.net_fen for p in self.positions),
            "positions": [
                {
                    "region": p.region,
                    "paid_fen": p.paid_fen,
                    "received_fen": p.received_fen,
                    "net_fen": p.net_fen,
                    "reconciled": p.reconciled,
                    "disagreements": p.disagreements,
                    "taking_part": p.taking_part,
                }
                for p in self.positions
            ],
        }


async def read_window_report(client: BillClient, timeout_s: float = 10.0) -> WindowReport:
    """Collect a summary and its positions from the client's replies."""
    deadline = time.monotonic() + timeout_s
    report: WindowReport | None = None
    while report is None or not report.complete:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete window report from the clearinghouse in time")
        reply = await asyncio.wait_for(client.replies.get(), remaining)
        if isinstance(reply, WindowSummary):
            report = WindowReport(reply)
        elif (
            isinstance(reply, WindowPosition)
            and report is not None
            and reply.window == report.summary.window
        ):
            report.positions.append(reply)
    return report


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000)) if ms else "-"


async def query_window_report(
    client: BillClient, window: int, timeout_s: float = 10.0
) -> WindowReport:
    """Ask the clearinghouse for a window's report (0: the latest closed) and read it."""
    await client.send(CLEARINGHOUSE, QueryWindow(window, client.address))
    return await read_window_report(client, timeout_s)


async def reconciled_report(
    client: BillClient, report: WindowReport, wait_s: float, poll_s: float = 0.25
) -> WindowReport:
    """The window's report once every region taking part has reconciled it, or the latest
    one when ``wait_s`` runs out (its ``pending`` names the regions still missing)."""
    deadline = time.monotonic() + wait_s
    while report.pending and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        report = await query_window_report(client, report.summary.window)
    return report


def format_window_report(report: WindowReport) -> str:
    s = report.summary
    lines = [
        f"clearing window {s.window} ({s.state}): opened {_when(s.opened_at_ms)},"
        f" closed {_when(s.closed_at_ms)}",
        f"{s.transfers} cross-region transfers, ¥{_yuan(s.amount_fen)};"
        f" regions reconciled {s.reconciled_regions}/{s.regions}"
        + (f" ({s.disabled_regions} disabled)" if s.disabled_regions else "")
        + ";"
        f" disagreements {s.disagreements} (repaired {s.repaired})",
        "",
        f"{'region':<8} {'paid (¥)':>14} {'received (¥)':>14} {'net (¥)':>14}  reconciled",
    ]
    for p in sorted(report.positions, key=lambda p: p.region):
        if not p.taking_part:
            verdict = "disabled"
        elif not p.reconciled:
            verdict = "pending"
        else:
            verdict = "clean" if not p.disagreements else f"{p.disagreements} disagreements"
        lines.append(
            f"{p.region:<8} {_yuan(p.paid_fen):>14} {_yuan(p.received_fen):>14}"
            f" {_yuan(p.net_fen):>14}  {verdict}"
        )
    lines.append(
        f"{'sum':<8} {'':>14} {'':>14} {_yuan(sum(p.net_fen for p in report.positions)):>14}"
    )
    return "\n".join(lines)
