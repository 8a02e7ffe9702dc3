"""Care away from home (异地就医) over the real RabbitMQ, the real services and the real CLI.

Parents insured in Henan (Zhengzhou) are treated in Guangzhou, where their son works and
is insured; another son works in Shanghai. Guangzhou and Shanghai settle care away from
home directly (80 % of a bill within their catalogues); Beijing does not.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker.testing import unique_namespace
from broker.topology import Topology
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    AwayRegistrationOutcome,
    BillOutcome,
    EnrollPerson,
    RecordBinding,
    RegisterRegion,
    Relationship,
    RequestAwayRegistration,
    SubmitAwayBill,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Insurance, PaymentOrder
from gongji.audit import audit_books
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster
from regions.store import person_account
from tests.family.conftest import SETTINGS, regions_configured

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

HENAN, GUANGZHOU, SHANGHAI, BEIJING, HUBEI = "410100", "440100", "310000", "110000", "420100"
REGIONS = (HENAN, GUANGZHOU, SHANGHAI, BEIJING, HUBEI)
DAY_MS = 86_400_000

PEOPLE = [
    (HENAN, "P1", Insurance.RESIDENT, 0),  # mother: no personal account
    (HENAN, "P2", Insurance.EMPLOYEE, 10_000),  # father
    (HUBEI, "H1", Insurance.EMPLOYEE, 10_000),  # an aunt insured where policy differs
    (GUANGZHOU, "G1", Insurance.EMPLOYEE, 50_000),  # the son in Guangzhou
    (SHANGHAI, "S1", Insurance.EMPLOYEE, 50_000),  # the son in Shanghai
]


@dataclass
class Away:
    cluster: InProcessCluster
    client: BillClient
    topology: Topology

    async def register(
        self, rid: str, psn: str, care: str, from_ms: int, until_ms: int = 0, insured: str = HENAN
    ) -> AwayRegistrationOutcome:
        request = RequestAwayRegistration(
            rid, psn, f"pw-{psn}", care, from_ms, until_ms, self.client.address
        )
        return await self.client.register_away(insured, request, timeout_s=30)

    async def bill(
        self, tid: str, psn: str, care: str, amount: int, insured: str = HENAN
    ) -> BillOutcome:
        bill = SubmitAwayBill(tid, psn, insured, amount, self.client.address)
        return await self.client.request(care, bill, tid, timeout_s=30)

    def available(self, code: str, psn: str) -> int:
        store = self.cluster.region_store(code)
        try:
            return store.books.available(person_account(psn))
        finally:
            store.close()

    def audit(self) -> None:
        audit = audit_books(self.cluster.region_books(REGIONS))
        assert audit.conserved and audit.books_balanced, audit.problems


@pytest.fixture
async def away(amqp_url: str, tmp_path: Path) -> AsyncIterator[Away]:
    topology = Topology(namespace=unique_namespace("away"))
    async with InProcessCluster(
        amqp_url, topology, tmp_path, regions=REGIONS, clients=["away"], settings=SETTINGS
    ) as cluster:
        await cluster.start(REGIONS)
        client = await cluster.open_client("away")
        try:
            for code, direct, order in (
                (HENAN, False, PaymentOrder.OWN_FIRST),
                (GUANGZHOU, True, PaymentOrder.OWN_FIRST),
                (SHANGHAI, True, PaymentOrder.OWN_FIRST),
                (BEIJING, False, PaymentOrder.OWN_FIRST),
                (HUBEI, False, PaymentOrder.COPAYER_FIRST),
            ):
                register = RegisterRegion(
                    code,
                    f"region {code}",
                    "p",
                    True,
                    payment_order=order,
                    direct_settlement=direct,
                    catalogue_share_permille=800,
                )
                await client.send(CLEARINGHOUSE, register)
            for code, psn, insurance, balance in PEOPLE:
                enrol = EnrollPerson(psn, insurance, balance, f"pw-{psn}")
                await client.send(region_address(code), enrol)
            for bid, copayer, region, beneficiary, insured in (
                ("b1", "G1", GUANGZHOU, "P1", HENAN),
                ("b2", "S1", SHANGHAI, "P2", HENAN),
                ("b3", "S1", SHANGHAI, "H1", HUBEI),
            ):
                binding = RecordBinding(
                    bid, copayer, region, beneficiary, insured, Relationship.PARENT
                )
                await client.send(CLEARINGHOUSE, binding)
            await regions_configured(cluster, REGIONS, PEOPLE)
            yield Away(cluster, client, topology)
        finally:
            await client.close()
            await cluster.stop_all()
            await cluster.delete_queues(REGIONS)


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_registered_and_paid_by_the_copayer_in_the_region_of_care(away: Away) -> None:
    registered = await away.register("r1", "P1", GUANGZHOU, now_ms() - DAY_MS)
    assert registered.outcome == COMMITTED
    outcome = await away.bill("t1", "P1", GUANGZHOU, 10_000)  # 8,000 within the catalogue
    assert (outcome.outcome, outcome.paid_fen, outcome.payer_region) == (
        COMMITTED,
        8_000,
        GUANGZHOU,
    )
    assert (outcome.own_paid_fen, outcome.remaining_fen) == (0, 2_000)
    assert away.available(GUANGZHOU, "G1") == 42_000
    away.audit()


async def test_registered_and_paid_across_three_regions(away: Away) -> None:
    assert (await away.register("r2", "P2", GUANGZHOU, now_ms() - DAY_MS)).outcome == COMMITTED
    outcome = await away.bill("t1", "P2", GUANGZHOU, 20_000)  # 16,000 within the catalogue
    # Henan's order: the own account first (10,000), the son in Shanghai the rest.
    assert (outcome.outcome, outcome.own_paid_fen, outcome.paid_fen) == (COMMITTED, 10_000, 6_000)
    assert outcome.payer_region == SHANGHAI
    assert (away.available(HENAN, "P2"), away.available(SHANGHAI, "S1")) == (0, 44_000)
    away.audit()
    closed = await gongji(away, "admin", "close-window")
    assert closed["net_sum_fen"] == 0
    nets = {p["region"]: p["net_fen"] for p in closed["positions"]}
    assert (nets[HENAN], nets[SHANGHAI], nets[GUANGZHOU]) == (-10_000, -6_000, 16_000)
    assert closed["regions_reconciled"] == closed["regions"]
    assert all(p["disagreements"] == 0 for p in closed["positions"])


async def test_the_insured_regions_policy_orders_the_payment(away: Away) -> None:
    # Hubei pays the co-payer first: the son in Shanghai pays all 8,000, the aunt's own
    # account nothing.
    outcome = await away.register("r3", "H1", SHANGHAI, now_ms() - DAY_MS, insured=HUBEI)
    assert outcome.outcome == COMMITTED
    paid = await away.bill("t1", "H1", SHANGHAI, 10_000, insured=HUBEI)
    assert (paid.paid_fen, paid.own_paid_fen, paid.remaining_fen) == (8_000, 0, 2_000)
    assert away.available(HUBEI, "H1") == 10_000
    away.audit()


async def test_refusals_not_registered_expired_and_not_enabled(away: Away) -> None:
    old = await away.register("r-old", "P2", SHANGHAI, now_ms() - 10 * DAY_MS, now_ms() - DAY_MS)
    assert old.outcome == COMMITTED
    refused = await away.register("r-bj", "P2", BEIJING, now_ms())
    assert refused.outcome == ReasonCode.CARE_REGION_NOT_ENABLED
    got = {
        "not registered": await away.bill("t1", "P1", SHANGHAI, 1_000),
        "expired": await away.bill("t2", "P2", SHANGHAI, 1_000),
        "not enabled": await away.bill("t3", "P2", BEIJING, 1_000),
    }
    assert {what: o.outcome for what, o in got.items()} == {
        "not registered": ReasonCode.NOT_REGISTERED_AWAY,
        "expired": ReasonCode.REGISTRATION_EXPIRED,
        "not enabled": ReasonCode.CARE_REGION_NOT_ENABLED,
    }
    assert (away.available(HENAN, "P2"), away.available(SHANGHAI, "S1")) == (10_000, 50_000)
    for code in REGIONS:
        store = away.cluster.region_store(code)
        try:
            assert store.holds_by_state() == {}
        finally:
            store.close()


async def test_a_duplicate_bill_is_paid_once(away: Away) -> None:
    assert (await away.register("r1", "P1", GUANGZHOU, now_ms() - DAY_MS)).outcome == COMMITTED
    first = await away.bill("t1", "P1", GUANGZHOU, 1_000)
    again = await away.bill("t1", "P1", GUANGZHOU, 1_000)
    assert (first.outcome, again.outcome, again.paid_fen) == (COMMITTED, COMMITTED, 800)
    other = await away.bill("t1", "P1", GUANGZHOU, 5_000)
    assert other.outcome == ReasonCode.DUPLICATE_MISMATCH
    assert away.available(GUANGZHOU, "G1") == 49_200
    away.audit()


async def test_the_cli_registers_and_revokes(away: Away) -> None:
    code, out, err = await gongji_run(
        away,
        "person",
        "register-away",
        "--region",
        HENAN,
        "--psn",
        "P1",
        "--secret",
        "pw-P1",
        "--region-of-care",
        GUANGZHOU,
        "--json",
    )
    assert code == 0, err
    registration = json.loads(out)["registration_id"]
    show = ("person", "show", "--region", HENAN, "--psn", "P1")
    code, out, err = await gongji_local(*show, "--data-dir", str(away.cluster.data_dir))
    assert code == 0, err
    assert f"care away from home {registration}: at {GUANGZHOU} from " in out
    assert "with no end, active" in out
    code, out, err = await gongji_run(
        away,
        "bill",
        "submit-away",
        "--region-of-care",
        GUANGZHOU,
        "--insured-region",
        HENAN,
        "--beneficiary",
        "P1",
        "--amount-fen",
        "500",
    )
    assert code == 0, err
    assert "400 fen from 440100" in out
    revoke = ("person", "revoke-away", "--region", HENAN, "--psn", "P1", "--secret", "pw-P1")
    code, out, err = await gongji_run(away, *revoke, "--registration", registration)
    assert code == 0 and "revoked" in out, err
    code, out, _ = await gongji_run(
        away,
        "bill",
        "submit-away",
        "--region-of-care",
        GUANGZHOU,
        "--insured-region",
        HENAN,
        "--beneficiary",
        "P1",
        "--amount-fen",
        "500",
    )
    assert code == 1 and "NOT_REGISTERED_AWAY" in out


async def gongji_local(*args: str) -> tuple[int, str, str]:
    """Run a CLI command that reads the files only (no broker options)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gongji.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def gongji(a: Away, *args: str) -> Any:
    code, out, err = await gongji_run(a, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def gongji_run(a: Away, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gongji.cli",
        *args,
        "--amqp-url",
        a.cluster.amqp_url,
        "--namespace",
        a.topology.namespace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
