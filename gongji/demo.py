"""``gongji demo``: a clearinghouse and five regions, a population, a few hundred bills.

With a broker (``--amqp-url`` or ``AMQP_URL``) it runs the real services in one process
on RabbitMQ; without one it runs the same cores on the simulated network of
``gongji.sim``, so it works on a fresh machine. Either way it then audits every region's
books and prints what happened.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.operations import BillOutcome, SubmitBill
from contracts.reasons import COMMITTED
from gongji.audit import AuditReport, audit_books
from gongji.population import DEMO_REGIONS, generate_bills, generate_population, region_of

if TYPE_CHECKING:
    from gongji.client import BillClient


@dataclass(slots=True)
class DemoReport:
    """What ``gongji demo`` prints (``--json``: this as one object)."""

    regions: list[str]
    transfers: int
    outcomes: dict[str, int]
    partial: int
    moved_fen: int
    books_balanced: bool
    conserved: bool
    duplicates_replayed: int
    duplicates_same_outcome: int
    wall_seconds: float
    transport: str = "rabbitmq"
    problems: list[str] = field(default_factory=list)
    simulation: dict[str, Any] | None = None
    """On the simulated network: seed, trace hash, faults and invariant violations."""

    def as_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "regions": self.regions,
            "transfers": self.transfers,
            "outcomes": self.outcomes,
            "partial": self.partial,
            "moved_fen": self.moved_fen,
            "books_balanced": self.books_balanced,
            "conserved": self.conserved,
            "duplicates_replayed": self.duplicates_replayed,
            "duplicates_same_outcome": self.duplicates_same_outcome,
            "wall_seconds": round(self.wall_seconds, 3),
            "problems": self.problems,
        } | ({} if self.simulation is None else {"simulation": self.simulation})


async def run_demo(
    amqp_url: str,
    *,
    transfers: int = 400,
    persons_per_region: int = 200,
    seed: int = 1,
    concurrency: int = 64,
) -> DemoReport:
    # Imported here: the simulated demo must not need a broker client library at all.
    from broker.topology import Topology
    from gongji.client import BillClient
    from gongji.inprocess import InProcessCluster

    started = time.perf_counter()
    topology = Topology(namespace=f"gongji-demo-{uuid.uuid4().hex[:8]}")
    codes = [r.code for r in DEMO_REGIONS]
    population = generate_population(DEMO_REGIONS, persons_per_region, seed)
    with tempfile.TemporaryDirectory(prefix="gongji-demo-") as tmp:
        data_dir = Path(tmp)
        async with InProcessCluster(amqp_url, topology, data_dir) as cluster:
            await cluster.start(codes)
            assert cluster.connection is not None
            client = await BillClient.open(cluster.connection, topology, "demo")
            try:
                await client.send_all(population.setup_operations())
                bills = generate_bills(population, transfers, seed, client.address)
                first = await _submit_all(client, bills, concurrency)
                replayed, same = await _replay_duplicates(client, bills, first, seed)
            finally:
                await client.close()
                await cluster.stop_all()
                await cluster.delete_queues(codes)
            audit = audit_books(cluster.region_books(codes))
    return _summary(codes, bills, first, audit, replayed, same, started, "rabbitmq")


def run_demo_simulated(
    *,
    transfers: int = 400,
    persons_per_region: int = 200,
    seed: int = 1,
    faults: str = "none",
) -> DemoReport:
    """The same demo on the simulated network (no broker), with ``faults`` if asked."""
    from gongji.sim import SimConfig, parse_faults
    from gongji.sim.engine import CLIENT, Simulation
    from gongji.sim.workload import COPAY, Request

    started = time.perf_counter()
    codes = [r.code for r in DEMO_REGIONS]
    population = generate_population(DEMO_REGIONS, persons_per_region, seed)
    bills = generate_bills(population, transfers, seed, CLIENT)
    requests = [
        Request(b.transfer_id, COPAY, region_of(b.beneficiary), region_of(b.beneficiary), b)
        for b in bills
    ]
    config = SimConfig(
        seed=seed,
        transfers=len(requests),
        regions=len(DEMO_REGIONS),
        faults=parse_faults(faults),
        wallet_share=0,
        premium_share=0,
    )
    sim = Simulation(config, DEMO_REGIONS, population=population, requests=requests)
    result = sim.run()
    first = dict(result.outcomes)
    # Replay some bills as they were, and one with another amount, as the broker demo does.
    sample = random.Random(seed + 1).sample(bills, min(10, len(bills)))
    before = dict(sim.latest)
    sim.run_more([(region_of(b.beneficiary), b) for b in sample])
    same = sum(
        sim.latest.get(b.transfer_id) is not before.get(b.transfer_id)  # answered again
        and _same(sim.latest[b.transfer_id], first[b.transfer_id])
        for b in sample
        if b.transfer_id in first
    )
    if bills:
        b = bills[0]
        changed = SubmitBill(b.transfer_id, b.beneficiary, b.amount_fen + 1, b.reply_to)
        sim.run_more([(region_of(b.beneficiary), changed)])
        first[f"{b.transfer_id}#changed"] = sim.latest[b.transfer_id]
    audit = audit_books({code: n.books for code, n in sim.region_nodes.items() if n.books})
    report = _summary(codes, bills, first, audit, len(sample), same, started, "sim")
    checker = result.checker
    report.problems += [str(v) for v in checker.violations]
    report.simulation = {
        "seed": seed,
        "trace_hash": result.trace_hash,
        "faults": config.faults.spec(),
        "faults_injected": result.faults_injected,
        "violations": checker.violation_count,
        "simulated_seconds": result.simulated_ms / 1000,
    }
    return report


def _same(a: BillOutcome, b: BillOutcome) -> bool:
    return (a.outcome, a.paid_fen) == (b.outcome, b.paid_fen)


def _summary(
    codes: list[str],
    bills: list[SubmitBill],
    first: dict[str, BillOutcome],
    audit: AuditReport,
    replayed: int,
    same: int,
    started: float,
    transport: str,
) -> DemoReport:
    """Outcomes counted, money compared with the books (shared by both transports)."""
    # One outcome per bill, plus the changed re-submission's DUPLICATE_MISMATCH.
    outcomes = Counter(o.outcome for o in first.values())
    moved = sum(o.paid_fen for o in first.values() if o.outcome == COMMITTED)
    # Bills are paid by co-payers (moved between regions) and, by the region's policy,
    # from the beneficiary's own account and wallet: all of it lands in bills paid.
    paid = sum(o.paid_fen + o.own_paid_fen + o.wallet_paid_fen for o in first.values())
    problems = list(audit.problems)
    if paid != audit.bills_paid_fen:
        problems.append(f"outcomes say {paid} fen paid, the books say {audit.bills_paid_fen}")
    return DemoReport(
        regions=codes,
        transfers=len(bills),
        outcomes=dict(sorted(outcomes.items())),
        partial=sum(1 for o in first.values() if o.outcome == COMMITTED and o.remaining_fen),
        moved_fen=moved,
        books_balanced=audit.books_balanced,
        conserved=audit.conserved and paid == audit.bills_paid_fen,
        duplicates_replayed=replayed,
        duplicates_same_outcome=same,
        wall_seconds=time.perf_counter() - started,
        transport=transport,
        problems=problems,
    )


async def _submit_all(
    client: BillClient, bills: list[SubmitBill], concurrency: int
) -> dict[str, BillOutcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(bill: SubmitBill) -> BillOutcome:
        async with gate:
            return await client.submit(region_of(bill.beneficiary), bill)

    results = await asyncio.gather(*(one(b) for b in bills))
    return {o.transfer_id: o for o in results}


async def _replay_duplicates(
    client: BillClient,
    bills: list[SubmitBill],
    first: dict[str, BillOutcome],
    seed: int,
) -> tuple[int, int]:
    """Re-submit some bills as they were (same outcome, no money moves twice) and one
    with another amount (``DUPLICATE_MISMATCH``, recorded as that submission's outcome)."""
    rng = random.Random(seed + 1)
    sample = rng.sample(bills, min(10, len(bills)))
    same = 0
    for bill in sample:
        again = await client.submit(region_of(bill.beneficiary), bill)
        original = first[bill.transfer_id]
        same += (again.outcome, again.paid_fen) == (original.outcome, original.paid_fen)
    if bills:
        bill = bills[0]
        changed = SubmitBill(bill.transfer_id, bill.beneficiary, bill.amount_fen + 1, bill.reply_to)
        outcome = await client.submit(region_of(bill.beneficiary), changed)
        first[f"{bill.transfer_id}#changed"] = outcome
    return len(sample), same


def format_report(report: DemoReport) -> str:
    """A human-readable summary."""
    lines = [
        f"gongji demo over {report.transport}: {len(report.regions)} regions "
        f"({', '.join(report.regions)}), {report.transfers} bills "
        f"in {report.wall_seconds:.1f} s",
        "",
        "outcomes:",
    ]
    for outcome, count in sorted(report.outcomes.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {outcome:<26} {count:>6}")
    lines += [
        f"  (of the committed, {report.partial} paid in part; the rest left to other means)",
        "",
        f"money moved:      ¥{report.moved_fen / 100:,.2f} ({report.moved_fen} fen)",
        f"duplicates:       {report.duplicates_same_outcome} of {report.duplicates_replayed} "
        "replayed bills gave the first outcome again, moving nothing twice",
        f"books balanced:   {'yes' if report.books_balanced else 'NO'}",
        f"money conserved:  {'yes' if report.conserved else 'NO'}",
    ]
    lines += [f"problem: {p}" for p in report.problems]
    return "\n".join(lines)
