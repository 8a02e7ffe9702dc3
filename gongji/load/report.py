"""Running a load against a cluster and reporting it, with a check of the money moved.

The conservation check reads the regions' SQLite books (read at quiescence, before and
after): every region's books balance, money is conserved across regions (opening
balances = accounts + bills paid; inter-region positions sum to zero), and the books'
increase in bills paid equals the sum the load's ``COMMITTED`` outcomes report.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.connection import connect
from broker.topology import Topology
from gongji.audit import AuditReport, audit_books
from gongji.cluster.seed import SeededPopulation
from gongji.ledger_audit import audit_data_dir
from gongji.ledger_snapshot import locate, read_clearinghouse, read_region
from gongji.load.generator import LoadConfig, LoadGenerator, LoadResult, ProgressFn
from gongji.load.nemesis import Fault, Nemesis, recovery_seconds
from regions.service import region_database
from regions.store import RegionStore


@dataclass(slots=True)
class Target:
    """Which cluster to load: its namespace, population and (if local) its data dir."""

    namespace: str
    seeded: SeededPopulation
    data_dir: Path | None = None
    mailboxes: bool = False
    """Its regions are served through province mailboxes (``ClusterState.mailboxes``)."""


def audit_regions(data_dir: Path, codes: Sequence[str]) -> AuditReport:
    """Audit the books of the regions in ``data_dir`` (they may be running: WAL)."""
    stores: dict[str, RegionStore] = {}
    try:
        for code in codes:
            path = region_database(data_dir, code)
            if path.exists():
                stores[code] = RegionStore.open(path, cached=False)
        return audit_books({code: store.books for code, store in stores.items()})
    finally:
        for store in stores.values():
            with contextlib.suppress(Exception):
                store.close()


@dataclass(slots=True)
class BooksCheck:
    """The books' side of the conservation check."""

    balanced: bool
    conserved: bool
    bills_paid_delta_fen: int
    held_fen: int
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LoadReport:
    """What ``gongji load`` prints; ``--json`` prints ``as_json()``."""

    namespace: str
    result: LoadResult
    books: BooksCheck | None
    faults: list[Fault] | None = None
    """The nemesis's faults (None: no nemesis)."""
    fates: Fates | None = None
    """What became of the unanswered requests, and the independent audit (with a nemesis)."""

    @property
    def failed(self) -> bool:
        """A lost, stuck or duplicated request, a failed audit, money not conserved."""
        if self.conserved is False:
            return True
        fates = self.fates
        return fates is not None and (
            fates.lost > 0 or fates.stuck > 0 or fates.duplicated_effects > 0 or not fates.audit_ok
        )

    @property
    def conserved(self) -> bool | None:
        """True when the books balance, money is conserved and the books moved what the
        outcomes say; None when the books could not be read (no data dir)."""
        if self.books is None:
            return None
        return (
            self.books.balanced
            and self.books.conserved
            and self.books.bills_paid_delta_fen == self.result.moved_fen
        )

    def outcomes(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for counts in self.result.outcomes.values():
            total.update(counts)
        return dict(sorted(total.items()))

    def errors(self) -> dict[str, int]:
        names = ("timeouts", "unroutable", "publish_failed", "duplicate_outcomes")
        errors = {name: self.result.errors.get(name, 0) for name in names}
        errors.update({k: v for k, v in self.result.errors.items() if k not in errors})
        return errors

    def as_json(self) -> dict[str, Any]:
        result, config = self.result, self.result.config
        return {
            "namespace": self.namespace,
            "regions": result.regions,
            "mix": config.mix,
            "target_per_second": config.rate,
            "duration_s": config.duration_s,
            "cross_province_share": config.cross_province,
            "skew": config.skew,
            "sent": result.sent,
            "unsent": result.unsent,
            "completed": result.completed,
            "achieved_per_second": round(result.achieved_per_second, 1),
            "steady_per_second": round(result.steady_per_second(), 1),
            "cross_province_sent": result.cross_province_sent,
            "latency_ms": {flow: h.summary_ms() for flow, h in result.latency.items()},
            "send_lag_ms": result.send_lag.summary_ms(),
            "outcomes": self.outcomes(),
            "outcomes_by_flow": {f: dict(sorted(c.items())) for f, c in result.outcomes.items()},
            "errors": self.errors(),
            "moved_fen": result.moved_fen,
            "copayer_paid_fen": result.copayer_paid_fen,
            "bills_paid": {k: result.bills_paid.get(k, 0) for k in ("full", "part", "refused")},
            "family_moved_fen": dict(sorted(result.family_moved_fen.items())),
            "conserved": self.conserved,
            **self._nemesis_json(),
            "books": None
            if self.books is None
            else {
                "balanced": self.books.balanced,
                "conserved": self.books.conserved,
                "bills_paid_delta_fen": self.books.bills_paid_delta_fen,
                "held_fen": self.books.held_fen,
                "problems": self.books.problems,
            },
        }

    def _nemesis_json(self) -> dict[str, Any]:
        if self.faults is None or self.fates is None:
            return {}
        fates = self.fates
        return {
            "faults_injected": dict(Counter(f.kind for f in self.faults)),
            "faults": [f.as_json() for f in self.faults],
            "recovery_seconds": [f.recovery_s for f in self.faults],
            "lost": fates.lost,
            "stuck": fates.stuck,
            "duplicated_effects": fates.duplicated_effects,
            "duplicate_outcomes": self.result.errors.get("duplicate_outcomes", 0),
            "audit": {"ok": fates.audit_ok, "violations": fates.violations},
        }


@dataclass(slots=True)
class Fates:
    """After a run with faults: what the files say of the requests without an outcome."""

    lost: int
    """Unanswered, and in no region's file: the request never arrived."""
    stuck: int
    """Unanswered, arrived, and still not final once the cluster is quiet."""
    duplicated_effects: int
    """Money moved twice for one transfer (the audit's double posts and credits)."""
    audit_ok: bool
    violations: list[str]


def fates_of(data_dir: Path, unanswered: Sequence[str]) -> Fates:
    """Read the cluster's files (read-only, independently of the services)."""
    files = locate(data_dir)
    hub = read_clearinghouse(files.clearinghouse)
    regions = [read_region(code, path) for code, path in files.regions.items()]
    known = set(hub.transfers) | {tid for r in regions for tid in r.bills}
    final = {t for t, row in hub.transfers.items() if row.state in ("committed", "aborted")}
    final |= {tid for r in regions for tid, bill in r.bills.items() if bill.state != "requested"}
    for path in files.regions.values():  # binding requests and revocations
        states = binding_request_states(path)
        known |= set(states)
        final |= {rid for rid, state in states.items() if state != "requested"}
    lost = sum(1 for tid in unanswered if tid not in known)
    stuck = sum(1 for tid in unanswered if tid in known and tid not in final)
    audit = audit_data_dir(data_dir)
    twice = sum(1 for v in audit.violations if v.kind in ("double_post", "double_credit"))
    return Fates(lost, stuck, twice, audit.ok, [str(v) for v in audit.violations[:50]])


def binding_request_states(path: Path) -> dict[str, str]:
    """Request id -> state of a region's binding requests (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return dict(db.execute("SELECT request_id, state FROM binding_requests"))
        except sqlite3.OperationalError:  # a region that never had one: no table yet
            return {}


def format_report(report: LoadReport) -> str:
    """The human-readable report."""
    data = report.as_json()
    lines = [
        f"gongji load: {data['sent']} requests to {len(data['regions'])} regions "
        f"at a target of {data['target_per_second']:g}/s for {data['duration_s']:g} s "
        f"({data['cross_province_sent']} cross-province)",
        f"achieved:  {data['achieved_per_second']:,.1f}/s overall, "
        f"{data['steady_per_second']:,.1f}/s steady ({data['completed']} outcomes)",
        "",
        "latency from the intended send time (ms):",
        f"  {'flow':<10} {'count':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'p99.9':>9} {'max':>9}",
    ]
    for flow, s in data["latency_ms"].items():
        lines.append(
            f"  {flow:<10} {s['count']:>8} {s['p50']:>9.1f} {s['p90']:>9.1f} "
            f"{s['p99']:>9.1f} {s['p999']:>9.1f} {s['max']:>9.1f}"
        )
    lag = data["send_lag_ms"]
    lines.append(
        f"  (of which the generator's own send lag: p50 {lag['p50']:.1f}, "
        f"p99 {lag['p99']:.1f}, max {lag['max']:.1f})"
    )
    lines += ["", "outcomes:"]
    for outcome, count in sorted(data["outcomes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {outcome:<26} {count:>8}")
    if len(data["outcomes_by_flow"]) > 1:
        span = report.result.last_outcome - report.result.started
        lines += ["", "by flow (outcomes per second over the run, then each outcome):"]
        for flow, counts in data["outcomes_by_flow"].items():
            total = sum(counts.values())
            rate = total / span if span > 0 else 0.0
            each = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            lines.append(f"  {flow:<10} {rate:>7.1f}/s  {each or 'none'}")
    lines += ["", "errors:"]
    lines += [f"  {name:<26} {count:>8}" for name, count in data["errors"].items()]
    lines += [
        "",
        f"money moved: {data['moved_fen']} fen (¥{data['moved_fen'] / 100:,.2f}) towards bills, "
        f"{data['copayer_paid_fen']} fen of it by co-payers",
        "bills:       {full} paid in full, {part} in part, {refused} refused".format(
            **data["bills_paid"]
        ),
    ]
    books = data["books"]
    if books is None:
        lines.append("conserved:   not checked (no access to the regions' books: --data-dir)")
    else:
        lines.append(
            f"conserved:   {'yes' if data['conserved'] else 'NO'} (books balanced: "
            f"{'yes' if books['balanced'] else 'NO'}; bills paid grew by "
            f"{books['bills_paid_delta_fen']} fen; held {books['held_fen']} fen)"
        )
        lines += [f"  problem: {p}" for p in books["problems"]]
    if "faults" in data:
        lines += ["", "faults (the nemesis):"]
        for f in data["faults"]:
            back = "not back" if f["recovery_s"] is None else f"back after {f['recovery_s']} s"
            lines.append(f"  {f['at_s']:>6} s  {f['kind']:<18} {f['target']:<16} {back}")
        audit = data["audit"]
        lines += [
            f"lost: {data['lost']}, stuck: {data['stuck']}, duplicated effects: "
            f"{data['duplicated_effects']} (duplicate outcome messages, harmless: "
            f"{data['duplicate_outcomes']})",
            f"audit: {'ok' if audit['ok'] else 'FAILED'}",
        ]
        lines += [f"  {v}" for v in audit["violations"]]
    return "\n".join(lines)


async def _audit_at_quiescence(
    data_dir: Path, codes: Sequence[str], before: AuditReport, moved_fen: int, wait_s: float
) -> BooksCheck:
    """Audit until the books agree with the outcomes or ``wait_s`` passes (transfers that
    timed out at the client may still be finishing)."""
    deadline = time.monotonic() + wait_s
    while True:
        after = await asyncio.to_thread(audit_regions, data_dir, codes)
        delta = after.bills_paid_fen - before.bills_paid_fen
        settled = delta == moved_fen and after.conserved and after.books_balanced
        if settled or time.monotonic() >= deadline:
            problems = list(after.problems)
            if delta != moved_fen:
                problems.append(
                    f"the books' bills paid grew by {delta} fen; the outcomes say {moved_fen}"
                )
            return BooksCheck(
                after.books_balanced, after.conserved, delta, after.held_fen, problems
            )
        await asyncio.sleep(0.25)


async def run_load(
    amqp_url: str,
    target: Target,
    config: LoadConfig,
    *,
    progress: ProgressFn | None = None,
    audit_wait_s: float = 15.0,
    nemesis: Nemesis | None = None,
) -> LoadReport:
    """Run one load against the cluster and check the books when they can be read; with
    a ``nemesis``, inject its faults meanwhile and account for every request after."""
    codes = [r.code for r in target.seeded.regions]
    before = None
    if target.data_dir is not None:
        before = await asyncio.to_thread(audit_regions, target.data_dir, codes)
    topology = Topology(namespace=target.namespace)
    connection = await connect(amqp_url, name=f"gongji-load:{target.namespace}")
    try:
        generator = LoadGenerator(
            connection, topology, target.seeded, config, mailboxes=target.mailboxes
        )
        faults = None
        if nemesis is not None:
            faults = asyncio.get_running_loop().create_task(_alongside(nemesis, generator))
        try:
            result = await generator.run(progress)
        finally:
            if faults is not None:
                if not generator.sending.is_set():
                    faults.cancel()  # the load never started
                with contextlib.suppress(asyncio.CancelledError):
                    await faults  # a fault in progress ends before the report
    finally:
        await connection.close()
    books = None
    if target.data_dir is not None and before is not None:
        books = await _audit_at_quiescence(
            target.data_dir, codes, before, result.moved_fen, audit_wait_s
        )
    report = LoadReport(target.namespace, result, books)
    if nemesis is not None:
        recovery_seconds(nemesis.faults, result.timeline)
        report.faults = nemesis.faults
        if target.data_dir is not None:
            report.fates = await asyncio.to_thread(fates_of, target.data_dir, result.unanswered)
    return report


async def _alongside(nemesis: Nemesis, generator: LoadGenerator) -> None:
    """The nemesis's schedule runs from the load's own start."""
    await generator.sending.wait()
    await nemesis.run(generator.result.started)
