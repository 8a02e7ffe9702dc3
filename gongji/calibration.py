"""A run's figures against its scenario's targets (``[calibration]``), for
``gongji report calibration``.

The run is read from the report ``gongji load --json`` printed (a file): it carries every
figure compared here, it is what a user keeps of a run, and it does not need the cluster
any more. Figures:

- ``wallet_amount_fen``: money moved by committed wallet transfers / their number;
- ``premium_money_share``: premiums paid / (co-payers' part of bills + premiums paid);
- ``flow_shares.F``: requests of flow F / all requests answered (``binding`` counts its
  revocations too);
- ``bills_paid.full|part|refused``: co-payments paid in full, in part (the rest left to
  other means), refused, / all co-payments answered.

A deviation is measured minus target; the relative one divides it by the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.reasons import COMMITTED
from gongji.scenario.records import BILLS_PAID, CalibrationTargets

REVOKE = "revoke"
"""How ``gongji load`` reports the binding flow's revocations (``gongji.load.flows``)."""


class CalibrationError(ValueError):
    """A load report that lacks what the comparison needs."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One compared figure; ``measured`` is None when the run has none (no such request)."""

    name: str
    target: float
    measured: float | None

    @property
    def deviation(self) -> float | None:
        return None if self.measured is None else self.measured - self.target

    @property
    def relative(self) -> float | None:
        if self.deviation is None or self.target == 0:
            return None
        return self.deviation / self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "deviation": self.deviation,
            "relative_deviation": self.relative,
        }


def compare(targets: CalibrationTargets, load: dict[str, Any]) -> list[Figure]:
    """Each target of ``targets`` beside what the load report ``load`` measured."""
    try:
        by_flow: dict[str, dict[str, int]] = load["outcomes_by_flow"]
        family: dict[str, int] = load.get("family_moved_fen", {})
        copayer_paid = int(load["copayer_paid_fen"])
    except (KeyError, TypeError, ValueError) as error:
        raise CalibrationError(f"not a gongji load --json report (no {error})") from None
    figures: list[Figure] = []
    if targets.wallet_amount_fen is not None:
        committed = by_flow.get("wallet", {}).get(COMMITTED, 0)
        mean = family.get("wallet", 0) / committed if committed else None
        figures.append(Figure("wallet_amount_fen", targets.wallet_amount_fen, mean))
    if targets.premium_money_share is not None:
        premiums = family.get("premium", 0)
        spent = copayer_paid + premiums
        share = premiums / spent if spent else None
        figures.append(Figure("premium_money_share", targets.premium_money_share, share))
    if targets.flow_shares:
        counts = {flow: sum(c.values()) for flow, c in by_flow.items()}
        counts["binding"] = counts.get("binding", 0) + counts.pop(REVOKE, 0)
        total = sum(counts.values())
        for flow, share in targets.flow_shares:
            measured = counts.get(flow, 0) / total if total else None
            figures.append(Figure(f"flow_shares.{flow}", share, measured))
    if targets.bills_paid:
        paid = load.get("bills_paid")
        if not isinstance(paid, dict):
            raise CalibrationError("the load report has no 'bills_paid' (an older gongji?)")
        total = sum(int(paid.get(k, 0)) for k in BILLS_PAID)
        for ending, share in targets.bills_paid:
            measured = int(paid.get(ending, 0)) / total if total else None
            figures.append(Figure(f"bills_paid.{ending}", share, measured))
    return figures


def format_figures(scenario: str, figures: list[Figure]) -> str:
    """The table ``gongji report calibration`` prints."""
    lines = [
        f"calibration of the run against scenario {scenario}:",
        f"  {'figure':<28} {'target':>12} {'measured':>12} {'deviation':>12} {'relative':>9}",
    ]
    for f in figures:
        amount = f.name.endswith("_fen")
        measured = "-" if f.measured is None else _number(f.measured, amount)
        deviation = "-" if f.deviation is None else _number(f.deviation, amount, signed=True)
        relative = "-" if f.relative is None else f"{f.relative:+.0%}"
        target = _number(f.target, amount)
        lines.append(f"  {f.name:<28} {target:>12} {measured:>12} {deviation:>12} {relative:>9}")
    if not figures:
        lines.append("  (the scenario has no [calibration] targets)")
    return "\n".join(lines)


def _number(value: float, amount: bool, *, signed: bool = False) -> str:
    """Amounts (fen) whole, shares with 3 decimals."""
    sign = "+" if signed else ""
    return f"{value:{sign},.0f}" if amount else f"{value:{sign}.3f}"
