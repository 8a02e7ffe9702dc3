"""What ``gongji sim`` prints: one JSON object, or a readable summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from contracts.reasons import COMMITTED
from gongji.flows import WindowFlows, flows_json, format_flows
from gongji.sim.checker import Violation
from gongji.sim.places import province_of
from gongji.sim.simulation import RunResult

NO_OUTCOME = "NO_OUTCOME"


@dataclass(slots=True)
class SimReport:
    """The figures of one run (``as_json`` is the ``--json`` object)."""

    seed: int
    regions: list[str]
    faults: str
    transfers: dict[str, int]
    transfers_submitted: int
    faults_injected: dict[str, int]
    invariants_checked: dict[str, int]
    violations: list[Violation]
    violation_count: int
    trace_hash: str
    simulated_seconds: float
    wall_seconds: float
    moved_fen: int
    committed_cross_province: int
    hold_timeout_ms: int
    healed_at_seconds: float
    quiet_after_heal_seconds: float | None
    network: dict[str, int]
    replay: str
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    windows_closed: int = 0
    plant: str = ""
    phase_wall_seconds: dict[str, float] = field(default_factory=dict)
    traces: dict[str, list[str]] = field(default_factory=dict)
    replay_hash_matches: bool | None = None
    clearing_flows: list[WindowFlows] = field(default_factory=list)
    """Money moved between provinces per clearing window (``gongji report flows``)."""
    scenario: str = ""
    days: int = 0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0

    @property
    def transfers_per_wall_second(self) -> float:
        return self.transfers_submitted / self.wall_seconds if self.wall_seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seed": self.seed,
            "trace_hash": self.trace_hash,
            "transfers": self.transfers,
            "transfers_submitted": self.transfers_submitted,
            "flows": self.flows,
            "faults_injected": self.faults_injected,
            "invariants_checked": self.invariants_checked,
            "violations": [v.as_json() for v in self.violations],
            "violation_count": self.violation_count,
            "simulated_seconds": round(self.simulated_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "transfers_per_wall_second": round(self.transfers_per_wall_second, 1),
            "phase_wall_seconds": {k: round(v, 3) for k, v in self.phase_wall_seconds.items()},
            "regions": self.regions,
            "faults": self.faults,
            "plant": self.plant,
            "moved_fen": self.moved_fen,
            "committed_cross_province": self.committed_cross_province,
            "hold_timeout_ms": self.hold_timeout_ms,
            "healed_at_seconds": round(self.healed_at_seconds, 3),
            "quiet_after_heal_seconds": None
            if self.quiet_after_heal_seconds is None
            else round(self.quiet_after_heal_seconds, 3),
            "network": self.network,
            "windows_closed": self.windows_closed,
            "replay": self.replay,
            "clearing_flows": flows_json(self.clearing_flows),
        }
        if self.scenario:
            out["scenario"] = self.scenario
            out["days"] = self.days
        if self.violations:
            out["traces"] = self.traces
            out["replay_hash_matches"] = self.replay_hash_matches
        return out


def build_report(result: RunResult, wall_seconds: float) -> SimReport:
    """Count outcomes and money from a finished run."""
    outcomes = Counter(o.outcome for o in result.outcomes.values())
    missing = len(result.requests) - len(result.outcomes)
    if missing:
        outcomes[NO_OUTCOME] = missing
    by_flow: dict[str, Counter[str]] = {}
    for r in result.requests:
        outcome = result.outcomes.get(r.transfer_id)
        by_flow.setdefault(r.flow, Counter())[
            NO_OUTCOME if outcome is None else outcome.outcome
        ] += 1
    committed = [o for o in result.outcomes.values() if o.outcome == COMMITTED and o.paid_fen]
    provinces = {r.code: r.province for r in result.regions}

    def province(code: str) -> str:
        return provinces.get(code) or province_of(code)

    payee_province = {r.transfer_id: province(r.payee_region) for r in result.requests}
    cross = sum(1 for o in committed if province(o.payer_region) != payee_province[o.transfer_id])
    stats = result.stats
    checker = result.checker
    quiet = result.quiet_at_ms
    return SimReport(
        seed=result.config.seed,
        regions=[r.code for r in result.regions],
        faults=result.config.faults.spec(),
        plant=result.config.plant,
        transfers=dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
        transfers_submitted=len(result.requests),
        flows={flow: dict(sorted(c.items())) for flow, c in sorted(by_flow.items())},
        windows_closed=result.windows_closed,
        faults_injected=result.faults_injected,
        invariants_checked=dict(checker.checked),
        violations=list(checker.violations),
        violation_count=checker.violation_count,
        trace_hash=result.trace_hash,
        simulated_seconds=result.simulated_ms / 1000,
        wall_seconds=wall_seconds,
        moved_fen=sum(o.paid_fen for o in committed),
        committed_cross_province=cross,
        hold_timeout_ms=result.settings.hold_timeout_ms,
        healed_at_seconds=result.healed_at_ms / 1000,
        quiet_after_heal_seconds=None if quiet is None else (quiet - result.healed_at_ms) / 1000,
        network={
            "deliveries": stats.deliveries,
            "mailbox_deliveries": stats.mailbox_deliveries,
            "operations": stats.operations,
            "steps": stats.steps,
            "ticks": stats.ticks,
            "redeliveries": stats.redeliveries,
            "client_retries": stats.client_retries,
            "publish_dropped": stats.publish_dropped,
            "unroutable": stats.unroutable,
            "core_errors": stats.core_errors,
            "dead_lettered": stats.dead_lettered,
            "forgeries": stats.forgeries,
            "forgeries_refused": stats.forgeries_refused,
        },
        replay=result.config.replay_command(),
        clearing_flows=result.clearing_flows,
        scenario=result.config.scenario,
        days=result.config.days,
        phase_wall_seconds={
            "setup": stats.setup_seconds,
            "cores": stats.core_seconds,
            "checks": stats.check_seconds,
            "network": max(
                0.0, wall_seconds - stats.setup_seconds - stats.core_seconds - stats.check_seconds
            ),
        },
    )


def format_report(report: SimReport, *, show_flows: bool = False) -> str:
    """A readable summary; on violations, the seed, the replay command and the traces."""
    rate = report.transfers_per_wall_second
    lines = [
        f"gongji sim: seed {report.seed}, {report.transfers_submitted} requests, "
        f"{len(report.regions)} regions, faults {report.faults}"
        + (f", PLANTED BUG {report.plant}" if report.plant else ""),
        f"  simulated {report.simulated_seconds:.1f} s in {report.wall_seconds:.1f} s wall "
        f"({rate:,.0f} transfers per wall second)",
        f"  trace hash {report.trace_hash}",
        "",
        "outcomes:",
    ]
    lines += [f"  {name:<26} {count:>8}" for name, count in report.transfers.items()]
    lines += [
        f"  ({flow}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
        for flow, counts in report.flows.items()
    ]
    lines += [
        f"  money moved ¥{report.moved_fen / 100:,.2f}; "
        f"{report.committed_cross_province} committed transfers crossed a province",
        "",
        "faults injected: "
        + (", ".join(f"{k} {v}" for k, v in report.faults_injected.items()) or "none"),
        f"  hold timeout {report.hold_timeout_ms} ms; healed at {report.healed_at_seconds:.1f} s"
        + (
            f", quiet {report.quiet_after_heal_seconds:.1f} s later"
            if report.quiet_after_heal_seconds is not None
            else ", NEVER QUIET"
        ),
        "invariants checked: "
        + ", ".join(f"{k} {v}" for k, v in report.invariants_checked.items()),
        f"  clearing windows closed, reconciled and settled: {report.windows_closed}",
        "",
    ]
    if report.scenario:
        lines.insert(1, f"  scenario {report.scenario}, a month of {report.days} simulated days")
    if show_flows:
        lines += ["money moved between provinces (gongji report flows):", ""]
        lines += [format_flows(report.clearing_flows)]
    if report.ok:
        lines.append("no violations")
        return "\n".join(lines)
    lines.append(f"{report.violation_count} VIOLATIONS (seed {report.seed}); first ones:")
    lines += [f"  {v}" for v in report.violations[:20]]
    lines += ["", f"replay: {report.replay}"]
    if report.replay_hash_matches is False:
        lines.append("  (the replay's trace hash differed: the run is not deterministic)")
    for tid, story in report.traces.items():
        lines += ["", f"transfer {tid}:"]
        lines += [f"  {line}" for line in story] or ["  (no events)"]
    return "\n".join(lines)
