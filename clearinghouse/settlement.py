"""Settlement between regional funds (清算), at the close of a clearing window.

Each region has a settlement account at the clearinghouse holding its advance (预付金).
At a close, for every region with a position in the window, the advance pays what the
region owes and takes what it is owed (``net_fen``, received less paid), and then the
rule brings it back to its target: the region's fund tops it up, or takes the surplus
back (a negative top-up). The nets of a window sum to zero, so the advances pay each
other exactly; only top-ups cross between the funds and the clearinghouse.

The rule (``SettlementRule``) is one number per run, from the scenario: the target
advance in fen. 0 is pure net settlement (a region's fund pays or is paid its net at
each close); a positive target is a standing advance, paid in at the first close.

Every close issues a ``Settle`` to each region concerned; the region books it and
answers ``SettlementBooked``. A close asked again re-sends the same settlements, and a
restart re-sends those not yet booked; a region books each window once.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearinghouse.clearing import positions
from clearinghouse.store import ClearinghouseStore, RegionSettlement
from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import region_address
from contracts.operations import Settle, SettlementBooked
from contracts.settlement_states import (
    SettlementEvent,
    SettlementState,
    SettlementStateError,
    settlement_transition,
)


@dataclass(frozen=True, slots=True)
class SettlementRule:
    """How a region's advance is kept: topped up (or drawn down) to ``advance_fen``."""

    advance_fen: int = 0

    def __post_init__(self) -> None:
        if type(self.advance_fen) is not int or self.advance_fen < 0:
            raise ValueError(f"an advance is a whole number of fen >= 0, not {self.advance_fen!r}")

    def top_up(self, advance_before: int, net: int) -> int:
        """What the fund pays in (negative: takes back) after the advance moved by ``net``."""
        return self.advance_fen - (advance_before + net)


class FundSettlement:
    """Issues each closed window's settlements and records their booking."""

    def __init__(self, store: ClearinghouseStore, rule: SettlementRule) -> None:
        self.store = store
        self.settlements = store.settlements
        self.rule = rule

    def settle_window(self, window: int, now_ms: int) -> Effects:
        """The settlements of a closed window: issued once, re-sent when asked again."""
        issued = self.settlements.of_window(window)
        if issued:
            return Effects(self._reissue(issued, now_ms))
        entries = self.store.clearing_entries(window)
        lines: dict[str, int] = {}
        for e in entries:
            lines[e.payer_region] = lines.get(e.payer_region, 0) + 1
            lines[e.payee_region] = lines.get(e.payee_region, 0) + 1
        out: list[Outgoing] = []
        for region, (paid, received) in positions(entries).items():
            before = self.settlements.advance(region)
            net = received - paid
            top_up = self.rule.top_up(before, net)
            s = RegionSettlement(
                window,
                region,
                paid,
                received,
                net,
                lines[region],
                before,
                self.rule.advance_fen,
                top_up,
                before + net + top_up,
                settlement_transition(
                    window, region, SettlementState.ABSENT, SettlementEvent.ISSUE
                ),
                now_ms,
                None,
            )
            self.settlements.add(s)
            self.settlements.add_change(window, region, SettlementEvent.ISSUE, s.state, now_ms)
            out.append(_instruction(s))
        return Effects(out)

    @staticmethod
    def _reissue(issued: list[RegionSettlement], now_ms: int) -> list[Outgoing]:
        """The same instructions again (no state changes: no rows)."""
        for s in issued:
            settlement_transition(s.window, s.region, s.state, SettlementEvent.REISSUE)
        return [_instruction(s) for s in issued]

    def booked(self, op: SettlementBooked, now_ms: int) -> Effects:
        s = self.settlements.get(op.window, op.region)
        if s is None:
            return Effects(events=[Anomaly("", f"{op.region} booked unknown window {op.window}")])
        if (op.net_fen, op.top_up_fen) != (s.net_fen, s.top_up_fen):
            # The region's lines add up to another net: reconciliation's disagreements say
            # which transfer; the settlement stays issued and visible until then.
            what = (
                f"{op.region} booked window {op.window} at net {op.net_fen}, top-up"
                f" {op.top_up_fen}; issued {s.net_fen}, {s.top_up_fen}"
            )
            return Effects(events=[Anomaly("", what)])
        event = (
            SettlementEvent.BOOKED_AGAIN
            if s.state is SettlementState.BOOKED
            else SettlementEvent.BOOKED
        )
        try:
            state = settlement_transition(s.window, s.region, s.state, event)
        except SettlementStateError as error:
            return Effects(events=[Anomaly("", str(error))])
        if event is SettlementEvent.BOOKED:
            self.settlements.mark_booked(s.window, s.region, now_ms)
            self.settlements.add_change(s.window, s.region, event, state, now_ms)
        return Effects()

    def resume(self, now_ms: int) -> Effects:
        """After a restart: re-send every settlement not yet booked."""
        return Effects(self._reissue(self.settlements.issued(), now_ms))


def _instruction(s: RegionSettlement) -> Outgoing:
    return Outgoing(
        region_address(s.region),
        Settle(s.window, s.region, s.net_fen, s.lines, s.top_up_fen, s.advance_after_fen),
    )
