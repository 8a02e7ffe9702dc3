"""A running cluster (real services, real RabbitMQ) with a small family population."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.testing import unique_namespace
from broker.topology import Topology
from clearinghouse.coordinator import CoordinatorSettings
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import EnrollPerson, RecordBinding, RegisterRegion, Relationship
from contracts.vocabulary import Insurance, PaymentOrder, Scope
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster

WUHAN, CHENGDU, SHANGHAI, BEIJING = "420100", "510100", "310000", "110000"
REGIONS = (WUHAN, CHENGDU, SHANGHAI, BEIJING)

SETTINGS = CoordinatorSettings(
    reserve_timeout_ms=3_000,
    quote_timeout_ms=2_000,
    hold_timeout_ms=60_000,
    retry_ms=500,
    max_retry_ms=2_000,
)


def registration(
    code: str,
    *,
    enabled: bool = True,
    scope: Scope = Scope.SCOPE_2024,
    order: PaymentOrder = PaymentOrder.OWN_FIRST,
    wallet: bool = True,
) -> RegisterRegion:
    return RegisterRegion(code, f"region {code}", "p", enabled, scope, order, wallet)


PEOPLE = [
    (WUHAN, "A1", Insurance.EMPLOYEE, 100_000),
    (WUHAN, "A2", Insurance.RESIDENT, 0),
    (WUHAN, "W2", Insurance.EMPLOYEE, 3_000),
    (SHANGHAI, "S1", Insurance.EMPLOYEE, 100_000),
    (CHENGDU, "B1", Insurance.RESIDENT, 0),
    (CHENGDU, "B2", Insurance.EMPLOYEE, 3_000),
    (CHENGDU, "N1", Insurance.NONE, 0),
    (BEIJING, "J1", Insurance.RESIDENT, 0),
    (BEIJING, "J2", Insurance.EMPLOYEE, 9_000),
]


@dataclass
class Family:
    """The cluster, a client, and the namespace; people's secrets are ``pw-<psn>``."""

    cluster: InProcessCluster
    client: BillClient
    topology: Topology
    amqp_url: str
    """The URL of the cluster's operator (``InProcessCluster.OPERATOR``), for the CLI."""

    async def seed_binding(
        self, bid: str, copayer: str, copayer_region: str, beneficiary: str, region: str
    ) -> None:
        binding = RecordBinding(
            bid, copayer, copayer_region, beneficiary, region, Relationship.PARENT
        )
        await self.client.send(CLEARINGHOUSE, binding)


async def regions_configured(
    cluster: InProcessCluster,
    regions: Sequence[str],
    people: Sequence[tuple[object, ...]],
    timeout_s: float = 20.0,
) -> None:
    """Wait until every region has its policy and its people (region code first in each
    of ``people``), bounded."""
    expected = Counter(p[0] for p in people)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        ready = True
        for code in regions:
            store = cluster.region_store(code)
            try:
                configured = store.db.connection.execute(
                    "SELECT COUNT(*) FROM settings"
                ).fetchone()[0]
                ready &= configured > 0 and store.person_count() == expected.get(code, 0)
            finally:
                store.close()
        if ready:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("regions were not configured in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def family(amqp_url: str, tmp_path: Path) -> AsyncIterator[Family]:
    topology = Topology(namespace=unique_namespace("family"))
    async with InProcessCluster(
        amqp_url, topology, tmp_path, regions=REGIONS, clients=["family"], settings=SETTINGS
    ) as cluster:
        await cluster.start(REGIONS)
        client = await cluster.open_client("family")
        try:
            setup = [
                registration(WUHAN),
                registration(CHENGDU, scope=Scope.SCOPE_2021, order=PaymentOrder.COPAYER_FIRST),
                registration(SHANGHAI, wallet=False),
                registration(BEIJING, enabled=False),
            ]
            for op in setup:
                await client.send(CLEARINGHOUSE, op)
            for code, psn, insurance, balance in PEOPLE:
                await client.send(
                    region_address(code), EnrollPerson(psn, insurance, balance, f"pw-{psn}")
                )
            await regions_configured(cluster, REGIONS, PEOPLE)
            yield Family(cluster, client, topology, cluster.amqp_url)
        finally:
            await client.close()
            await cluster.stop_all()
            await cluster.delete_queues(REGIONS)
