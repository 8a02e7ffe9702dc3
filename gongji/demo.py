"""``gongji demo``: a clearinghouse and five regions, a population, a few hundred bills.

Runs the real services in one process on the broker at ``AMQP_URL``, then audits every
region's books and prints what happened.
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
from typing import Any

from broker.topology import Topology
from contracts.operations import BillOutcome, SubmitBill
from contracts.reasons import COMMITTED
from gongji.audit import audit_books
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster
from gongji.population import DEMO_REGIONS, generate_bills, generate_population, region_of


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
        }


async def run_demo(
    amqp_url: str,
    *,
    transfers: int = 400,
    persons_per_region: int = 200,
    seed: int = 1,
    concurrency: int = 64,
) -> DemoReport:
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
    # One outcome per bill, plus the changed re-submission's DUPLICATE_MISMATCH.
    outcomes = Counter(o.outcome for o in first.values())
    moved = sum(o.paid_fen for o in first.values() if o.outcome == COMMITTED)
    problems = list(audit.problems)
    if moved != audit.bills_paid_fen:
        problems.append(f"outcomes say {moved} fen moved, the books say {audit.bills_paid_fen}")
    return DemoReport(
        regions=codes,
        transfers=len(bills),
        outcomes=dict(sorted(outcomes.items())),
        partial=sum(1 for o in first.values() if o.outcome == COMMITTED and o.remaining_fen),
        moved_fen=moved,
        books_balanced=audit.books_balanced,
        conserved=audit.conserved and moved == audit.bills_paid_fen,
        duplicates_replayed=replayed,
        duplicates_same_outcome=same,
        wall_seconds=time.perf_counter() - started,
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
