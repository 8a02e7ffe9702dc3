"""``gongji demo``: a scenario played end to end, on RabbitMQ or the simulated network.

The script is the same for both: set up the population, let co-payers pay premiums, fill
wallets and ask for bindings, submit the bills (applying the roll-out steps between
them), replay some requests as duplicates, close the clearing window and wait until every
region has reconciled it, then audit the books. ``Network`` is what differs.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    BillOutcome,
    BindingOutcome,
    CloseWindow,
    Operation,
    QueryWindow,
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    SubmitBill,
    WindowPosition,
    WindowSummary,
)
from contracts.vocabulary import Flow
from gongji.audit import audit_books
from gongji.population import region_of
from gongji.scenario import (
    Scenario,
    bills_of,
    binding_requests_of,
    population_of,
    premium_payments_of,
    rollout_operations,
    wallet_transfers_of,
)
from gongji.windows import WindowReport
from regions.books import Books

Answer = BillOutcome | BindingOutcome
Request = tuple[str, Operation, str]
"""(region the request is sent to, the request, the key its answer carries)."""


class Network(Protocol):
    """Where the scenario plays: real services on RabbitMQ, or the simulated network."""

    reply_to: str

    async def setup(self, outgoing: Sequence[Outgoing]) -> None: ...
    async def submit(self, requests: Sequence[Request]) -> dict[str, Answer]: ...
    async def operate(self, outgoing: Sequence[Outgoing]) -> None: ...
    async def close_window(self, request_id: str) -> WindowReport: ...
    async def window_report(self, window: int) -> WindowReport: ...
    def books(self) -> Mapping[str, Books]: ...


@dataclass(slots=True)
class ScenarioResult:
    """What a scenario run shows; ``as_json`` is what ``gongji demo --json`` prints."""

    transport: str
    scenario: str
    regions: int
    requests: dict[str, int]
    outcomes: dict[str, int]
    by_flow: dict[str, dict[str, int]]
    moved_fen: int
    books_balanced: bool
    conserved: bool
    duplicates_replayed: int
    duplicates_same_outcome: int
    window: dict[str, Any]
    wall_seconds: float
    problems: list[str] = field(default_factory=list)
    simulation: dict[str, Any] | None = None
    region_names: dict[str, str] = field(default_factory=dict)
    """Code to name, in the scenario's order."""
    not_enabled: list[str] = field(default_factory=list)
    """Regions not enabled once the script (and its roll-out) is done."""
    money_by_pair: dict[tuple[str, str], int] = field(default_factory=dict)
    """Fen moved from the payer's region to the payee's (the same region for what the
    beneficiary's own account or wallet paid); sums to ``moved_fen``."""

    def as_json(self) -> dict[str, Any]:
        body = {
            "transport": self.transport,
            "scenario": self.scenario,
            "regions": self.regions,
            "requests": self.requests,
            "outcomes": self.outcomes,
            "by_flow": self.by_flow,
            "moved_fen": self.moved_fen,
            "books_balanced": self.books_balanced,
            "conserved": self.conserved,
            "duplicates_replayed": self.duplicates_replayed,
            "duplicates_same_outcome": self.duplicates_same_outcome,
            "window": self.window,
            "wall_seconds": round(self.wall_seconds, 3),
            "problems": self.problems,
        }
        body["region_names"] = self.region_names
        body["not_enabled"] = self.not_enabled
        body["money_by_region_pair"] = [
            {"payer": payer, "payee": payee, "fen": fen}
            for (payer, payee), fen in _largest_first(self.money_by_pair)
        ]
        if self.simulation is not None:
            body["simulation"] = self.simulation
        return body


def _largest_first(pairs: Mapping[tuple[str, str], int]) -> list[tuple[tuple[str, str], int]]:
    return sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))


def _flow(answer: Answer) -> str:
    return "binding" if isinstance(answer, BindingOutcome) else answer.flow


def _moved(answer: Answer) -> int:
    """Money this request moved (co-payer, own account and wallet parts)."""
    if isinstance(answer, BindingOutcome) or (
        answer.reason is not None and answer.flow is not Flow.COPAY
    ):
        return 0
    if answer.flow is Flow.COPAY:
        return answer.paid_fen + answer.own_paid_fen + answer.wallet_paid_fen
    return answer.paid_fen


def _money_by_pair(
    answers: Mapping[str, Answer], sent: Mapping[str, Operation]
) -> dict[tuple[str, str], int]:
    """Where the money of each answer went: (payer region, payee region) -> fen, counted
    as ``_moved`` counts it."""
    pairs: Counter[tuple[str, str]] = Counter()
    for key, answer in answers.items():
        op = sent.get(key)
        if isinstance(answer, BindingOutcome) or op is None or not _moved(answer):
            continue
        if isinstance(op, SubmitBill):
            payee = region_of(op.beneficiary)
            if answer.paid_fen:
                pairs[answer.payer_region or payee, payee] += answer.paid_fen
            own = answer.own_paid_fen + answer.wallet_paid_fen
            if own:
                pairs[payee, payee] += own
        elif isinstance(op, RequestWalletTransfer | RequestPremiumPayment):
            pairs[region_of(op.copayer), op.beneficiary_region] += answer.paid_fen
    return dict(pairs)


async def play(scenario: Scenario, net: Network, transport: str) -> ScenarioResult:
    """Run the scenario's script on ``net`` and audit the result."""
    started = time.perf_counter()
    population = population_of(scenario)
    reply_to = net.reply_to
    await net.setup(population.setup_operations())
    premiums = premium_payments_of(scenario, population, reply_to)
    wallets = wallet_transfers_of(scenario, population, reply_to)
    bindings = binding_requests_of(scenario, population, reply_to)
    bills = bills_of(scenario, reply_to, population)
    sent: dict[str, Operation] = {b.transfer_id: b for b in bills}
    sent |= {w.transfer_id: w for w in wallets} | {p.transfer_id: p for p in premiums}
    answers: dict[str, Answer] = {}
    # Premiums first: bills may drain a co-payer before the premium is paid.
    answers |= await net.submit([(region_of(p.copayer), p, p.transfer_id) for p in premiums])
    answers |= await net.submit([(region_of(w.copayer), w, w.transfer_id) for w in wallets])
    answers |= await net.submit([(region_of(b.copayer), b, b.request_id) for b in bindings])
    done = 0
    for step in sorted(scenario.rollout, key=lambda s: s.after_bills):
        answers |= await net.submit([_bill(b) for b in bills[done : step.after_bills]])
        done = max(done, step.after_bills)
        await net.operate(rollout_operations(step))
    answers |= await net.submit([_bill(b) for b in bills[done:]])
    replayed, same, mismatch = await _replay(net, bills, wallets, answers, scenario.seed)
    report = await net.close_window(f"demo-close-{uuid.uuid4().hex[:8]}")
    final = await _reconciled(net, report.summary.window)
    audit = audit_books(net.books())

    outcomes = Counter(a.outcome for a in answers.values())
    if mismatch is not None:
        outcomes[mismatch.outcome] += 1
    by_flow: dict[str, Counter[str]] = {}
    for a in answers.values():
        by_flow.setdefault(_flow(a), Counter())[a.outcome] += 1
    problems = list(audit.problems)
    moved_bills = sum(_moved(a) for a in answers.values() if _flow(a) == Flow.COPAY)
    if moved_bills != audit.bills_paid_fen:
        problems.append(f"bills say {moved_bills} fen paid, the books {audit.bills_paid_fen}")
    net_sum = sum(p.net_fen for p in final.positions)
    if net_sum != 0:
        problems.append(f"window {final.summary.window} net positions sum to {net_sum}")
    clean = final.summary.disagreements == final.summary.repaired and all(
        p.disagreements == 0 for p in final.positions
    )
    if not clean:
        problems.append(f"window {final.summary.window} did not reconcile clean")
    requests = Counter(_flow(a) for a in answers.values())
    return ScenarioResult(
        transport=transport,
        scenario=scenario.name,
        regions=len(scenario.regions),
        requests=dict(sorted(requests.items())),
        outcomes=dict(sorted(outcomes.items())),
        by_flow={f: dict(sorted(c.items())) for f, c in sorted(by_flow.items())},
        moved_fen=sum(_moved(a) for a in answers.values()),
        books_balanced=audit.books_balanced,
        conserved=audit.conserved and moved_bills == audit.bills_paid_fen,
        duplicates_replayed=replayed,
        duplicates_same_outcome=same,
        window={
            "window": final.summary.window,
            "transfers": final.summary.transfers,
            "amount_fen": final.summary.amount_fen,
            "net_sum_fen": net_sum,
            "regions": final.summary.regions,
            "regions_reconciled": final.summary.reconciled_regions,
            "regions_disabled": final.summary.disabled_regions,
            "reconciled_clean": clean,
            "disagreements": final.summary.disagreements,
        },
        wall_seconds=time.perf_counter() - started,
        problems=problems,
        region_names={r.code: r.name for r in scenario.regions},
        not_enabled=[
            r.code for r in scenario.regions if r.code not in scenario.enabled_after(len(bills))
        ],
        money_by_pair=_money_by_pair(answers, sent),
    )


def _bill(bill: SubmitBill) -> Request:
    return region_of(bill.beneficiary), bill, bill.transfer_id


async def _replay(
    net: Network,
    bills: list[SubmitBill],
    wallets: list[RequestWalletTransfer],
    answers: dict[str, Answer],
    seed: int,
) -> tuple[int, int, Answer | None]:
    """Re-send some requests as they were (the first outcome again, nothing moves twice)
    and one bill with another amount (``DUPLICATE_MISMATCH``)."""
    rng = random.Random(seed + 1)
    sample: list[Request] = [_bill(b) for b in rng.sample(bills, min(8, len(bills)))]
    sample += [(region_of(w.copayer), w, w.transfer_id) for w in wallets[:2]]
    again = await net.submit(sample)
    same = sum(
        1
        for key, answer in again.items()
        if key in answers
        and (answer.outcome, _moved(answer)) == (answers[key].outcome, _moved(answers[key]))
    )
    mismatch = None
    if bills:
        b = bills[0]
        changed = SubmitBill(b.transfer_id, b.beneficiary, b.amount_fen + 1, b.reply_to)
        mismatch = (await net.submit([_bill(changed)])).get(b.transfer_id)
    return len(sample), same, mismatch


async def _reconciled(net: Network, window: int, timeout_s: float = 60.0) -> WindowReport:
    """The window's report once every region taking part has reconciled it (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = await net.window_report(window)
        done = report.summary.reconciled_regions >= report.summary.regions
        if done or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.1)


# --- RabbitMQ ---------------------------------------------------------------------------


class RabbitNetwork:
    """The real services, in this process, on RabbitMQ; a client submits and waits."""

    def __init__(
        self, cluster: Any, client: Any, codes: Sequence[str], concurrency: int = 64
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.codes = list(codes)
        self.reply_to: str = client.address
        self.gate = asyncio.Semaphore(concurrency)

    async def setup(self, outgoing: Sequence[Outgoing]) -> None:
        await self.client.send_all(outgoing)

    async def submit(self, requests: Sequence[Request]) -> dict[str, Answer]:
        async def one(region: str, op: Operation, key: str) -> Answer:
            async with self.gate:
                if isinstance(op, SubmitBill):
                    answer: Answer = await self.client.submit(region, op)
                elif isinstance(op, RequestBinding):
                    answer = await self.client.bind(region, op)
                else:
                    answer = await self.client.request(region, op, key)
                return answer

        answers = await asyncio.gather(*(one(*r) for r in requests))
        return {r[2]: a for r, a in zip(requests, answers, strict=True)}

    async def operate(self, outgoing: Sequence[Outgoing]) -> None:
        await self.client.send_all(outgoing)

    async def close_window(self, request_id: str) -> WindowReport:
        from gongji.windows import read_window_report

        await self.client.send(CLEARINGHOUSE, CloseWindow(request_id, self.client.address))
        return await read_window_report(self.client)

    async def window_report(self, window: int) -> WindowReport:
        from gongji.windows import read_window_report

        await self.client.send(CLEARINGHOUSE, QueryWindow(window, self.client.address))
        return await read_window_report(self.client)

    def books(self) -> Mapping[str, Books]:
        books: Mapping[str, Books] = self.cluster.region_books(self.codes)
        return books


async def play_on_rabbitmq(amqp_url: str, scenario: Scenario) -> ScenarioResult:
    from broker.topology import Topology
    from gongji.inprocess import InProcessCluster

    topology = Topology(namespace=f"gongji-demo-{uuid.uuid4().hex[:8]}")
    codes = scenario.codes
    with tempfile.TemporaryDirectory(prefix="gongji-demo-") as tmp:
        async with InProcessCluster(
            amqp_url, topology, Path(tmp), regions=codes, clients=["demo"]
        ) as cluster:
            await cluster.start(codes)
            client = await cluster.open_client("demo")
            try:
                network = RabbitNetwork(cluster, client, codes)
                return await play(scenario, network, "rabbitmq")
            finally:
                await client.close()
                await cluster.stop_all()
                await cluster.delete_queues(codes)


# --- the simulated network ---------------------------------------------------------------


class SimNetwork:
    """The same cores on ``gongji.sim``'s network and virtual time (no broker)."""

    def __init__(self, scenario: Scenario, faults: str = "none") -> None:
        from gongji.sim import SimConfig, parse_faults
        from gongji.sim.node import CLIENT

        self.scenario = scenario
        self.reply_to = CLIENT
        self.config = SimConfig(
            seed=scenario.seed,
            transfers=1,
            regions=len(scenario.regions),
            faults=parse_faults(faults),
            wallet_share=0,
            premium_share=0,
            window_ms=0,  # the script closes the one window itself, as on RabbitMQ
        )
        self.sim: Any = None
        self._population_ops: Sequence[Outgoing] = ()

    async def setup(self, outgoing: Sequence[Outgoing]) -> None:
        self._population_ops = outgoing  # the simulation sets up when it first runs

    async def submit(self, requests: Sequence[Request]) -> dict[str, Answer]:
        from gongji.sim.simulation import Simulation
        from gongji.sim.workload import Request as SimRequest

        if not requests:
            return {}
        if self.sim is None:
            # The first batch starts the simulation: it sets the population up through the
            # real cores (registrations, enrolments, bindings), then runs the requests.
            first = [
                SimRequest(key, _sim_flow(op), region, region, op) for region, op, key in requests
            ]
            self.sim = Simulation(
                self.config,
                self.scenario.regions,
                population=population_of(self.scenario),
                requests=first,
            )
            self.result = self.sim.run()
        else:
            self.sim.send_more([Outgoing(region_address(r), op) for r, op, _ in requests])
        return {key: answer for _, _, key in requests if (answer := self._answer(key))}

    def _answer(self, key: str) -> Answer | None:
        latest: BillOutcome | None = self.sim.latest.get(key)
        if latest is not None:
            return latest
        for reply in reversed(self.sim.replies):
            if isinstance(reply, BindingOutcome) and reply.request_id == key:
                return reply
        return None

    async def operate(self, outgoing: Sequence[Outgoing]) -> None:
        self.sim.send_more(list(outgoing))

    async def close_window(self, request_id: str) -> WindowReport:
        self.sim.send_more([Outgoing(CLEARINGHOUSE, CloseWindow(request_id, self.reply_to))])
        return self._report()

    async def window_report(self, window: int) -> WindowReport:
        self.sim.advance(1_000)
        self.sim.send_more([Outgoing(CLEARINGHOUSE, QueryWindow(window, self.reply_to))])
        return self._report()

    def _report(self) -> WindowReport:
        summary: WindowSummary | None = None
        positions: list[WindowPosition] = []
        for reply in self.sim.replies:
            if isinstance(reply, WindowSummary):
                summary, positions = reply, []
            elif isinstance(reply, WindowPosition) and summary is not None:
                positions.append(reply)
        assert summary is not None, "the clearinghouse sent no window report"
        return WindowReport(summary, positions)

    def books(self) -> Mapping[str, Books]:
        return {code: n.books for code, n in self.sim.region_nodes.items() if n.books}


def _sim_flow(op: Operation) -> str:
    if isinstance(op, RequestWalletTransfer):
        return Flow.WALLET
    if isinstance(op, RequestPremiumPayment):
        return Flow.PREMIUM
    if isinstance(op, RequestBinding):
        return "binding"
    return Flow.COPAY


async def play_on_sim(scenario: Scenario, faults: str = "none") -> ScenarioResult:
    net = SimNetwork(scenario, faults)
    result = await play(scenario, net, "sim")
    checker = net.result.checker
    result.problems += [str(v) for v in checker.violations]
    result.simulation = {
        "seed": scenario.seed,
        "trace_hash": net.result.trace_hash,
        "faults": net.config.faults.spec(),
        "violations": checker.violation_count,
        "simulated_seconds": net.sim.now / 1000,
    }
    return result


def format_result(result: ScenarioResult) -> str:
    """A human-readable summary of a scenario run."""
    lines = [
        f"gongji demo, scenario '{result.scenario}' over {result.transport}: {result.regions}"
        f" regions, {sum(result.requests.values())} requests in {result.wall_seconds:.1f} s"
        f" ({', '.join(f'{n} {f}' for f, n in result.requests.items())})",
        "",
        *_region_lines(result),
        "",
        "outcomes:",
    ]
    for outcome, count in sorted(result.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {outcome:<26} {count:>6}")
    w = result.window
    lines += [
        "",
        f"money moved:      ¥{result.moved_fen / 100:,.2f} ({result.moved_fen} fen)",
        f"duplicates:       {result.duplicates_same_outcome} of {result.duplicates_replayed}"
        " replayed requests gave the first outcome again, moving nothing twice",
        f"clearing window {w['window']}: {w['transfers']} cross-region transfers,"
        f" net positions sum to {w['net_sum_fen']} fen, {w['regions_reconciled']} regions"
        f" reconciled, {'clean' if w['reconciled_clean'] else 'NOT clean'}",
        f"books balanced:   {'yes' if result.books_balanced else 'NO'}",
        f"money conserved:  {'yes' if result.conserved else 'NO'}",
    ]
    lines += _pair_lines(result)
    lines += [f"problem: {p}" for p in result.problems]
    return "\n".join(lines)


REGIONS_PER_LINE = 4
PAIRS_SHOWN = 12
"""The text names the largest pairs; ``--json`` has them all."""


def _region_lines(result: ScenarioResult) -> list[str]:
    def named(codes: Sequence[str]) -> list[str]:
        listed = [f"{code} {result.region_names.get(code, '')}".strip() for code in codes]
        return [
            "  " + ", ".join(listed[i : i + REGIONS_PER_LINE])
            for i in range(0, len(listed), REGIONS_PER_LINE)
        ]

    off = result.not_enabled
    return [
        f"regions ({len(result.region_names)}):",
        *named(list(result.region_names)),
        f"not enabled at the end ({len(off)}){':' if off else ': none'}",
        *named(off),
    ]


def _pair_lines(result: ScenarioResult) -> list[str]:
    pairs = _largest_first(result.money_by_pair)
    if not pairs:
        return []
    across = [(pair, fen) for pair, fen in pairs if pair[0] != pair[1]]
    within = [(pair, fen) for pair, fen in pairs if pair[0] == pair[1]]
    lines = ["", "money by region pair (payer → payee, fen):"]
    for (payer, payee), fen in across[:PAIRS_SHOWN]:
        lines.append(f"  {payer} → {payee}  {fen:>12}")
    rest = across[PAIRS_SHOWN:]
    if rest:
        lines.append(f"  ... {len(rest)} more pairs, {sum(fen for _, fen in rest)} fen")
    if within:
        lines.append(
            f"  within a region (own account, wallet): {sum(fen for _, fen in within)} fen "
            f"in {len(within)} regions"
        )
    return lines
