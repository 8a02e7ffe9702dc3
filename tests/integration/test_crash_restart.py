"""Services crash mid-flow and restart: every transfer still ends once, in both regions or
neither, and the books stay balanced with money conserved."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.reasons import COMMITTED
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster
from tests.integration.conftest import (
    WUHAN,
    Run,
    World,
    assert_outcomes_match_books,
    eventually,
    mixed_scenario,
    unfinished,
)

# Deadlines longer than the downtime: these tests are about crashes, not timeouts.
pytestmark = [
    pytest.mark.broker,
    pytest.mark.timeout(60),
    pytest.mark.coordinator(reserve_timeout_ms=10_000, quote_timeout_ms=10_000),
]

BILLS = 120


async def crash_and_restart(cluster: InProcessCluster, client: BillClient, service: str) -> None:
    scenario, bills = mixed_scenario(BILLS, seed=20)
    world = World(cluster, client, scenario)
    await world.start()
    run = Run(world, bills, prefix=f"crash-{service}")

    run.submit(BILLS // 2)
    # Crash while the clearinghouse has transfers on the way.
    await eventually(
        lambda: unfinished(cluster) >= 5, "transfers in flight", timeout=20, interval=0.005
    )
    await cluster.kill(service)
    assert unfinished(cluster) > 0
    # The rest arrive while it is down; they wait in the queues.
    run.submit(BILLS // 2)
    await asyncio.sleep(0.3)
    if service == CLEARINGHOUSE:
        await cluster.start_clearinghouse()
    else:
        await cluster.start_region(service.removeprefix("region."))

    outcomes = await run.outcomes()

    assert len(outcomes) == BILLS
    ledger = await world.settle_and_check()
    assert_outcomes_match_books(cluster, ledger, outcomes)
    counted = Counter(outcome.outcome for _, outcome in outcomes.values())
    assert counted[COMMITTED] > 0 and len(counted) > 1, counted
    assert ledger.moved_fen == sum(o.paid_fen for _, o in outcomes.values())


async def test_clearinghouse_killed_mid_flow_restarts_and_finishes_every_transfer(
    cluster: InProcessCluster, client: BillClient
) -> None:
    await crash_and_restart(cluster, client, CLEARINGHOUSE)


async def test_payer_and_payee_region_killed_mid_flow_restarts_and_finishes_every_transfer(
    cluster: InProcessCluster, client: BillClient
) -> None:
    # Wuhan is the payer of some bills and the payee of others.
    await crash_and_restart(cluster, client, region_address(WUHAN))
