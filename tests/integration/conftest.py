"""End-to-end fixtures: the real services on the real RabbitMQ, one namespace per test.

No broker mocks. Each test gets a fresh namespace (queues, exchanges, dead-letter queue)
and a fresh data directory; an ``InProcessCluster`` runs the clearinghouse and region
services as tasks of the test's event loop; a ``BillClient`` on a connection of its own
submits bills. Afterwards every queue and exchange the test named is deleted.

``assert_all_or_nothing`` is the safety check of the flow: the clearinghouse says
COMMITTED exactly when the payer's hold is posted and the payee's credit recorded, with
the same amount, every bill has its final outcome, and the books balance and conserve
money.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from yarl import URL

from broker.connection import connect
from broker.testing import (
    TrackedTopology,
    cleanup_namespace,
    test_participants,
    unique_namespace,
)
from broker.users import Credentials, delete_users, provision
from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.store import ClearinghouseStore, Transfer, TransferState
from contracts import participants
from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    BillOutcome,
    EnrollPerson,
    Insurance,
    RecordBinding,
    RegisterRegion,
    Relationship,
    SubmitBill,
)
from contracts.reasons import ReasonCode
from gongji.audit import AuditReport, audit_books
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster
from regions.books import AccountTotals
from regions.store import Bill, BillState, HoldState, RegionStore, person_account

WUHAN = "420100"
SHANGHAI = "310000"
CHENGDU = "510100"
GUANGZHOU = "440100"
KUNMING = "530100"
"""Runs a region service, but the clearinghouse never registered it."""
URUMQI = "650100"
"""Co-payers are bound there; it is neither registered nor running."""
HAIKOU = "460100"
"""No service and no queue at all."""

TEST_SETTINGS = CoordinatorSettings(
    reserve_timeout_ms=1_500,
    quote_timeout_ms=1_000,
    hold_timeout_ms=30_000,
    retry_ms=300,
    max_retry_ms=1_000,
)
"""Short deadlines so timeouts and retries happen within a test; holds outlive any test."""

OUTCOME_TIMEOUT_S = 30.0
"""Bound on waiting for one bill's outcome (a liveness bound, not a speed assertion)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "coordinator(**fields): CoordinatorSettings fields to override for the test's cluster",
    )


# --- scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionSetup:
    code: str
    enabled: bool = True
    registered: bool = True
    running: bool = True


@dataclass(frozen=True, slots=True)
class PersonSetup:
    psn_no: str
    region: str
    insurance: Insurance
    balance_fen: int = 0


@dataclass(slots=True)
class Scenario:
    """Regions, persons and bindings, sent through the broker as set-up operations."""

    regions: list[RegionSetup]
    persons: list[PersonSetup] = field(default_factory=list)
    bindings: list[RecordBinding] = field(default_factory=list)

    @property
    def running(self) -> list[str]:
        return [r.code for r in self.regions if r.running]

    def person(self, psn_no: str, region: str, insurance: Insurance, balance_fen: int = 0) -> str:
        self.persons.append(PersonSetup(psn_no, region, insurance, balance_fen))
        return psn_no

    def bind(self, copayer: str, copayer_region: str, beneficiary: str, region: str) -> None:
        binding_id = f"bind-{len(self.bindings) + 1:05d}"
        self.bindings.append(
            RecordBinding(
                binding_id, copayer, copayer_region, beneficiary, region, Relationship.PARENT
            )
        )

    def setup_operations(self) -> list[Outgoing]:
        out = [
            Outgoing(CLEARINGHOUSE, RegisterRegion(r.code, f"region {r.code}", "p", r.enabled))
            for r in self.regions
            if r.registered
        ]
        running = set(self.running)
        out += [
            Outgoing(region_address(p.region), EnrollPerson(p.psn_no, p.insurance, p.balance_fen))
            for p in self.persons
            if p.region in running
        ]
        out += [Outgoing(CLEARINGHOUSE, b) for b in self.bindings]
        return out


def family_scenario() -> Scenario:
    """A small fixed world with one beneficiary per outcome.

    Chengdu is the payee region of most bills. Wuhan and Shanghai pay; Guangzhou is
    registered but not enabled; Kunming runs but is not registered; Urumqi neither.
    """
    s = Scenario(
        [
            RegionSetup(WUHAN),
            RegionSetup(SHANGHAI),
            RegionSetup(CHENGDU),
            RegionSetup(GUANGZHOU, enabled=False),
            RegionSetup(KUNMING, registered=False),
        ]
    )
    s.person("A1", WUHAN, Insurance.EMPLOYEE, 50_000)
    s.person("A0", WUHAN, Insurance.EMPLOYEE, 0)
    s.person("A2", SHANGHAI, Insurance.EMPLOYEE, 80_000)
    s.person("G1", GUANGZHOU, Insurance.EMPLOYEE, 90_000)
    s.person("GB", GUANGZHOU, Insurance.RESIDENT)
    s.person("K1", KUNMING, Insurance.RESIDENT)
    s.person("S1", SHANGHAI, Insurance.RESIDENT)
    for psn in ("B1", "B2", "B3", "B4", "B5", "B6"):
        s.person(psn, CHENGDU, Insurance.RESIDENT)
    s.person("N1", CHENGDU, Insurance.NONE)
    s.bind("A1", WUHAN, "B1", CHENGDU)  # one co-payer: full or partial
    s.bind("A1", WUHAN, "B2", CHENGDU)  # two co-payers: Shanghai's A2 has more
    s.bind("A2", SHANGHAI, "B2", CHENGDU)
    s.bind("A0", WUHAN, "B3", CHENGDU)  # ZERO_BALANCE
    s.bind("G1", GUANGZHOU, "B4", CHENGDU)  # payer region not enabled
    s.bind("U1", URUMQI, "B6", CHENGDU)  # payer region not registered
    s.bind("A1", WUHAN, "GB", GUANGZHOU)  # payee region not enabled
    s.bind("A1", WUHAN, "K1", KUNMING)  # payee region not registered
    s.bind("A1", WUHAN, "N1", CHENGDU)  # beneficiary not insured
    s.bind("A1", WUHAN, "S1", SHANGHAI)
    return s


def mixed_scenario(count: int, seed: int) -> tuple[Scenario, list[tuple[str, str, int]]]:
    """``count`` beneficiaries, each with one bill ``(region, beneficiary, amount)``.

    Most are bound to one or two co-payers of their own (balance > 0, so a bill is paid
    in full or in part); the rest hit REGION_NOT_ENABLED (either side), UNKNOWN_REGION,
    NO_BINDING or BENEFICIARY_NOT_INSURED. No co-payer is shared and none has a zero
    balance: every refusal is decided on the request, none after a region's answer (see
    ``test_redelivered_reserve_result_resends_the_refusal`` for why that matters).
    """
    rng = random.Random(seed)
    s = Scenario(
        [
            RegionSetup(WUHAN),
            RegionSetup(SHANGHAI),
            RegionSetup(CHENGDU),
            RegionSetup(GUANGZHOU, enabled=False),
        ]
    )
    enabled = [WUHAN, SHANGHAI, CHENGDU]
    bills: list[tuple[str, str, int]] = []
    for i in range(count):
        kind = rng.random()
        region = GUANGZHOU if 0.80 <= kind < 0.85 else rng.choice(enabled)
        insurance = Insurance.NONE if 0.85 <= kind < 0.90 else Insurance.RESIDENT
        beneficiary = s.person(f"P{i:04d}", region, insurance)
        others = [c for c in enabled if c != region]
        if kind < 0.80 or kind >= 0.85:
            copayers = 1 if kind < 0.60 or kind >= 0.85 else 2
            for j in range(copayers):
                payer_region = rng.choice(others)
                payer = s.person(
                    f"C{i:04d}-{j}", payer_region, Insurance.EMPLOYEE, rng.randint(5_000, 200_000)
                )
                s.bind(payer, payer_region, beneficiary, region)
        if 0.90 <= kind < 0.94:
            s.bind(s.person(f"C{i:04d}-g", GUANGZHOU, Insurance.EMPLOYEE, 50_000), GUANGZHOU,
                   beneficiary, region)  # fmt: skip
        elif 0.94 <= kind < 0.97:
            s.bind(f"C{i:04d}-u", URUMQI, beneficiary, region)
        # 0.97..1.0: no binding at all
        bills.append((region, beneficiary, rng.randint(1_000, 150_000)))
    return s, bills


# --- opening the stores of a running cluster ----------------------------------------------


@contextlib.contextmanager
def region_store(cluster: InProcessCluster, code: str) -> Iterator[RegionStore]:
    """A reader on a region's SQLite file (WAL: fine while the service runs), closed after."""
    store = cluster.region_store(code)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def clearinghouse_store(cluster: InProcessCluster) -> Iterator[ClearinghouseStore]:
    store = cluster.clearinghouse_store()
    try:
        yield store
    finally:
        store.close()


def available(cluster: InProcessCluster, code: str, psn_no: str) -> int:
    with region_store(cluster, code) as store:
        return store.books.available(person_account(psn_no))


def account_totals(cluster: InProcessCluster, code: str, psn_no: str) -> AccountTotals:
    with region_store(cluster, code) as store:
        totals = store.books.totals(person_account(psn_no))
    assert totals is not None, f"no account for {psn_no} in {code}"
    return totals


def all_totals(cluster: InProcessCluster, codes: Iterable[str]) -> dict[str, list[AccountTotals]]:
    result = {}
    for code in codes:
        with region_store(cluster, code) as store:
            result[code] = store.books.all_totals()
    return result


def holds(cluster: InProcessCluster, code: str) -> dict[str, tuple[HoldState, int]]:
    """transfer id -> (state, held fen) of every hold record of a region."""
    with region_store(cluster, code) as store:
        rows = store.db.connection.execute(
            "SELECT transfer_id, state, held_fen FROM holds"
        ).fetchall()
    return {tid: (HoldState(state), held) for tid, state, held in rows}


def pending_debits(cluster: InProcessCluster, codes: Iterable[str]) -> int:
    total = 0
    for code in codes:
        with region_store(cluster, code) as store:
            total += sum(t.debits_pending for t in store.books.all_totals())
    return total


def journal_phases(cluster: InProcessCluster, code: str, transfer_id: str) -> list[str]:
    with region_store(cluster, code) as store:
        rows = store.db.connection.execute(
            "SELECT phase FROM journal WHERE transfer_id = ? ORDER BY seq", (transfer_id,)
        ).fetchall()
    return [phase for (phase,) in rows]


def bill_record(cluster: InProcessCluster, code: str, transfer_id: str) -> Bill | None:
    with region_store(cluster, code) as store:
        return store.bill(transfer_id)


def transfer_record(cluster: InProcessCluster, transfer_id: str) -> Transfer | None:
    with clearinghouse_store(cluster) as store:
        return store.transfer(transfer_id)


def audit(cluster: InProcessCluster, codes: Iterable[str]) -> AuditReport:
    """``gongji.audit.audit_books`` over the regions' books."""
    stores = {code: cluster.region_store(code) for code in codes}
    try:
        return audit_books({code: store.books for code, store in stores.items()})
    finally:
        for store in stores.values():
            store.close()


# --- waiting ------------------------------------------------------------------------------


async def eventually(
    predicate: Callable[[], bool],
    what: str,
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - a bound on polling, reported by name
    interval: float = 0.02,
) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"still not true after {timeout} s: {what}")
        await asyncio.sleep(interval)


def _quiet(cluster: InProcessCluster, codes: Sequence[str]) -> bool:
    with clearinghouse_store(cluster) as ch:
        if ch.unfinished():
            return False
    for code in codes:
        with region_store(cluster, code) as store:
            sql = store.db.connection
            if sql.execute("SELECT COUNT(*) FROM bills WHERE state != 'settled'").fetchone()[0]:
                return False
            if sql.execute("SELECT COUNT(*) FROM holds WHERE state = 'pending'").fetchone()[0]:
                return False
    return True


async def quiesce(
    cluster: InProcessCluster,
    codes: Sequence[str],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a bound on polling
) -> None:
    """Wait until no transfer is unfinished, no bill unsettled and no hold pending."""
    await eventually(
        lambda: _quiet(cluster, codes),
        "every transfer final, every bill settled, no hold pending",
        timeout=timeout,
        interval=0.05,
    )


# --- the all-or-nothing check ---------------------------------------------------------------


@dataclass(slots=True)
class Ledger:
    """What ``assert_all_or_nothing`` found, for further assertions."""

    committed: int = 0
    aborted: int = 0
    moved_fen: int = 0
    bills: dict[tuple[str, str], Bill] = field(default_factory=dict)
    """(payee region, transfer id) -> the bill record."""
    audit: AuditReport = field(default_factory=AuditReport)


def assert_all_or_nothing(cluster: InProcessCluster, codes: Sequence[str]) -> Ledger:
    """Money moved in both regions or in neither, for every transfer; books sound.

    CH COMMITTED <=> the payer's hold is posted <=> the payee recorded the credit, all
    with the same amount; an aborted transfer left nothing posted, held or credited; every
    bill has its one final outcome, agreeing with the clearinghouse; each region's books
    balance (``Books.check() == []``) and money is conserved across regions.
    """
    with clearinghouse_store(cluster) as ch:
        tids = [tid for (tid,) in ch.db.connection.execute("SELECT transfer_id FROM transfers")]
        transfers = {tid: t for tid in tids if (t := ch.transfer(tid)) is not None}
    hold_at: dict[str, tuple[str, HoldState, int]] = {}
    credit_at: dict[str, tuple[str, int, str]] = {}
    ledger = Ledger()
    problems: list[str] = []
    for code in codes:
        with region_store(cluster, code) as store:
            sql = store.db.connection
            for tid, state, held in sql.execute("SELECT transfer_id, state, held_fen FROM holds"):
                hold_at[tid] = (code, HoldState(state), held)
            for tid, payer_region, amount in sql.execute(
                "SELECT transfer_id, payer_region, amount_fen FROM credits"
            ):
                credit_at[tid] = (code, amount, payer_region)
            for (tid,) in sql.execute("SELECT transfer_id FROM bills").fetchall():
                bill = store.bill(tid)
                assert bill is not None
                ledger.bills[(code, tid)] = bill
    for tid, t in transfers.items():
        hold = hold_at.get(tid)
        credit = credit_at.get(tid)
        bill = ledger.bills.get((t.payee_region, tid))
        if t.state is TransferState.COMMITTED:
            ledger.committed += 1
            ledger.moved_fen += t.posted_fen
            if t.posted_fen <= 0:
                problems.append(f"{tid}: committed with {t.posted_fen} fen")
            if hold != (t.payer_region, HoldState.POSTED, t.posted_fen):
                problems.append(f"{tid}: committed {t.posted_fen} but payer hold is {hold}")
            if credit != (t.payee_region, t.posted_fen, t.payer_region):
                problems.append(f"{tid}: committed {t.posted_fen} but payee credit is {credit}")
            if bill is None or (bill.state, bill.reason, bill.paid_fen) != (
                BillState.SETTLED,
                None,
                t.posted_fen,
            ):
                problems.append(f"{tid}: committed {t.posted_fen} but the bill is {bill}")
        elif t.state is TransferState.ABORTED:
            ledger.aborted += 1
            if t.abort_pending:
                problems.append(f"{tid}: aborted, abort still pending")
            if hold is not None and hold[1] in (HoldState.POSTED, HoldState.PENDING):
                problems.append(f"{tid}: aborted ({t.reason}) but payer hold is {hold}")
            if credit is not None:
                problems.append(f"{tid}: aborted ({t.reason}) but payee credited {credit}")
            if bill is None or (bill.state, bill.reason, bill.paid_fen) != (
                BillState.SETTLED,
                t.reason,
                0,
            ):
                problems.append(f"{tid}: aborted ({t.reason}) but the bill is {bill}")
        else:
            problems.append(f"{tid}: not final at the clearinghouse ({t.state})")
    for tid, (code, state, held) in hold_at.items():
        t = transfers.get(tid)
        if state is HoldState.POSTED and (t is None or t.state is not TransferState.COMMITTED):
            problems.append(f"{tid}: {held} fen posted in {code}, clearinghouse says {t}")
        if state is HoldState.PENDING:
            problems.append(f"{tid}: {held} fen still held in {code}")
    for tid, (code, amount, _) in credit_at.items():
        t = transfers.get(tid)
        if t is None or t.state is not TransferState.COMMITTED:
            problems.append(f"{tid}: {amount} fen credited in {code}, clearinghouse says {t}")
    for (code, tid), bill in ledger.bills.items():
        if bill.state is not BillState.SETTLED:
            problems.append(f"{tid}: bill in {code} has no final outcome")
        t = transfers.get(tid)
        # The same id submitted at another region: refused there, nothing else.
        elsewhere = t is not None and t.payee_region != code
        if elsewhere and bill.reason is not ReasonCode.DUPLICATE_MISMATCH:
            problems.append(f"{tid}: bill in {code} (not the payee) is {bill}")
    ledger.audit = audit(cluster, codes)
    problems += ledger.audit.problems
    if ledger.audit.held_fen:
        problems.append(f"{ledger.audit.held_fen} fen still held")
    if ledger.audit.bills_paid_fen != ledger.moved_fen:
        problems.append(
            f"clearinghouse committed {ledger.moved_fen} fen, books paid"
            f" {ledger.audit.bills_paid_fen}"
        )
    assert not problems, "\n".join(problems)
    assert ledger.audit.books_balanced and ledger.audit.conserved
    return ledger


def assert_outcomes_match_books(
    cluster: InProcessCluster, ledger: Ledger, outcomes: dict[str, tuple[str, BillOutcome]]
) -> None:
    """Each outcome the client got equals the payee's one recorded outcome for that bill."""
    problems = []
    for tid, (region, outcome) in outcomes.items():
        bill = ledger.bills.get((region, tid))
        if bill is None:
            problems.append(f"{tid}: client got {outcome}, region {region} has no bill")
            continue
        if (outcome.reason, outcome.paid_fen, outcome.remaining_fen) != (
            bill.reason,
            bill.paid_fen,
            bill.amount_fen - bill.paid_fen,
        ):
            problems.append(f"{tid}: client got {outcome}, the books say {bill}")
    assert not problems, "\n".join(problems)


# --- the world of one test ----------------------------------------------------------------


@dataclass(slots=True)
class World:
    """A running cluster with a scenario loaded, and a client to submit bills."""

    cluster: InProcessCluster
    client: BillClient
    scenario: Scenario
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def codes(self) -> list[str]:
        return self.scenario.running

    async def start(self) -> None:
        """Start every service, send the set-up, wait until every store has applied it."""
        await self.cluster.start(self.codes)
        await self.client.send_all(self.scenario.setup_operations())
        await self.wait_for_setup()

    async def wait_for_setup(self) -> None:
        persons = {code: 0 for code in self.codes}
        for p in self.scenario.persons:
            if p.region in persons:
                persons[p.region] += 1
        registered = sum(1 for r in self.scenario.regions if r.registered)

        def applied() -> bool:
            with clearinghouse_store(self.cluster) as ch:
                sql = ch.db.connection
                if len(ch.regions()) < registered:
                    return False
                if sql.execute("SELECT COUNT(*) FROM bindings").fetchone()[0] < len(
                    self.scenario.bindings
                ):
                    return False
            for code, count in persons.items():
                with region_store(self.cluster, code) as store:
                    if store.person_count() < count:
                        return False
            return True

        await eventually(applied, "the set-up operations applied everywhere")

    def new_id(self, prefix: str = "t") -> str:
        return f"{prefix}-{next(self._serial):05d}"

    def bill(self, beneficiary: str, amount_fen: int, transfer_id: str | None = None) -> SubmitBill:
        return SubmitBill(
            transfer_id or self.new_id(), beneficiary, amount_fen, self.client.address
        )

    async def pay(
        self, region: str, beneficiary: str, amount_fen: int, transfer_id: str | None = None
    ) -> BillOutcome:
        """Submit one bill to ``region`` and return its outcome."""
        bill = self.bill(beneficiary, amount_fen, transfer_id)
        return await self.client.submit(region, bill, timeout_s=OUTCOME_TIMEOUT_S)

    async def settle_and_check(self) -> Ledger:
        await quiesce(self.cluster, self.codes)
        return assert_all_or_nothing(self.cluster, self.codes)


# --- a run of bills in the background -----------------------------------------------------


def unfinished(cluster: InProcessCluster) -> int:
    """Transfers the clearinghouse has not finished (or still has an abort pending for)."""
    with clearinghouse_store(cluster) as ch:
        return len(ch.unfinished())


class Run:
    """Bills submitted in the background, each waiting for its outcome."""

    def __init__(self, world: World, bills: list[tuple[str, str, int]], prefix: str) -> None:
        self.world = world
        self.pending = list(bills)
        self.prefix = prefix
        self.tasks: dict[str, tuple[str, asyncio.Task[BillOutcome]]] = {}

    def submit(self, count: int) -> None:
        batch, self.pending = self.pending[:count], self.pending[count:]
        for region, beneficiary, amount in batch:
            bill = self.world.bill(beneficiary, amount, self.world.new_id(self.prefix))
            task = asyncio.create_task(
                self.world.client.submit(region, bill, timeout_s=OUTCOME_TIMEOUT_S)
            )
            self.tasks[bill.transfer_id] = (region, task)

    async def outcomes(self) -> dict[str, tuple[str, BillOutcome]]:
        results = await asyncio.gather(*(task for _, task in self.tasks.values()))
        return {
            tid: (region, outcome)
            for (tid, (region, _)), outcome in zip(self.tasks.items(), results, strict=True)
        }


# --- metrics ------------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    """A sample of the process-wide gongji registry (0 when the series does not exist)."""
    from telemetry.metrics import REGISTRY

    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


# --- dropping a connection from the broker's side -----------------------------------------


def local_rabbitmqctl(amqp_url: str) -> bool:
    """Whether ``rabbitmqctl`` can act on the broker of ``amqp_url`` (a local one)."""
    return shutil.which("rabbitmqctl") is not None and URL(amqp_url).host in (
        "127.0.0.1",
        "localhost",
    )


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
async def topology(amqp_url: str) -> AsyncIterator[TrackedTopology]:
    """A fresh namespace; its queues, dead-letter queue and exchanges are deleted after."""
    tracked = TrackedTopology(namespace=unique_namespace("test-it"))
    yield tracked
    await cleanup_namespace(amqp_url, tracked)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> CoordinatorSettings:
    """``TEST_SETTINGS``, with the fields of a ``coordinator(...)`` marker replaced."""
    marker = request.node.get_closest_marker("coordinator")
    return dataclasses.replace(TEST_SETTINGS, **(marker.kwargs if marker else {}))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


CLIENT = "it"
"""The test's submitter (an operator too: it registers regions and enrolls persons)."""
FORGER = "mallory"
"""A plain client's broker user, for the tests of forged messages."""


@pytest.fixture
async def credentials(amqp_url: str, topology: TrackedTopology) -> AsyncIterator[Credentials]:
    """A broker user for every service and the test's client, removed after the test."""
    made_for = [*test_participants(clients=[CLIENT]), participants.client(FORGER)]
    made = await asyncio.to_thread(provision, amqp_url, topology.namespace, made_for)
    yield made
    await asyncio.to_thread(delete_users, made.passwords())


@pytest.fixture
async def cluster(
    credentials: Credentials,
    amqp_url: str,
    topology: TrackedTopology,
    data_dir: Path,
    settings: CoordinatorSettings,
) -> AsyncIterator[InProcessCluster]:
    """A cluster with no service started yet; every running service is stopped after.

    ``synchronous="NORMAL"``: the tests crash tasks, not the machine, so commits need not
    reach the disk before acks, and the suite stays quick.
    """
    async with InProcessCluster(
        amqp_url,
        topology,
        data_dir,
        regions=(),
        settings=settings,
        synchronous="NORMAL",
        credentials=credentials,
    ) as running:
        yield running


@pytest.fixture
async def client_connection(
    credentials: Credentials, topology: TrackedTopology
) -> AsyncIterator[AbstractRobustConnection]:
    """The client's own connection: dropping the services' leaves the submitter alone."""
    url = credentials.url(participants.admin(CLIENT))
    connection = await connect(url, name=f"{topology.namespace}-client")
    yield connection
    await connection.close()


@pytest.fixture
async def client(
    client_connection: AbstractRobustConnection, topology: TrackedTopology
) -> AsyncIterator[BillClient]:
    bill_client = await BillClient.open(client_connection, topology, CLIENT)
    yield bill_client
    await bill_client.close()


@pytest.fixture
async def world(cluster: InProcessCluster, client: BillClient) -> World:
    """The family scenario, loaded into a running clearinghouse and five regions."""
    started = World(cluster, client, family_scenario())
    await started.start()
    return started
