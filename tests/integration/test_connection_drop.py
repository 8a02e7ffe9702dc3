"""The services' broker connections drop during a run of bills (the clearinghouse's, or
all of them at the proxy): they reconnect, and every bill still gets one final outcome
with the books balanced and money conserved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.testing import TcpProxy, TrackedTopology, close_connection_by_name
from broker.users import Credentials, with_base_url
from clearinghouse.coordinator import CoordinatorSettings
from contracts.participants import HUB
from gongji.client import BillClient
from gongji.inprocess import InProcessCluster
from tests.integration.conftest import (
    Run,
    World,
    assert_outcomes_match_books,
    eventually,
    local_rabbitmqctl,
    mixed_scenario,
    unfinished,
)

# Deadlines longer than a reconnect: this is about the connection, not about timeouts.
pytestmark = [
    pytest.mark.broker,
    pytest.mark.timeout(60),
    pytest.mark.coordinator(reserve_timeout_ms=15_000, quote_timeout_ms=15_000),
]

BILLS = 120


@pytest.fixture(params=["broker-close", "proxy-cut"])
async def how(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[TcpProxy | None]:
    """``None``: the broker closes the connection by name; else a proxy to cut it at."""
    if request.param == "broker-close":
        if not local_rabbitmqctl(amqp_url):
            pytest.skip("closing a connection from the broker's side needs a local rabbitmqctl")
        yield None
        return
    proxy = await TcpProxy.for_url(amqp_url)
    yield proxy
    await proxy.close()


async def test_dropped_connection_loses_no_bill_and_no_money(
    amqp_url: str,
    credentials: Credentials,
    topology: TrackedTopology,
    data_dir: Path,
    settings: CoordinatorSettings,
    client: BillClient,
    how: TcpProxy | None,
) -> None:
    url = amqp_url if how is None else how.url(amqp_url)
    async with InProcessCluster(
        url,
        topology,
        data_dir,
        regions=(),
        settings=settings,
        synchronous="NORMAL",
        credentials=with_base_url(credentials, url),
    ) as cluster:
        reconnected = asyncio.Event()

        def on_reconnect(*_: Any) -> None:
            reconnected.set()

        hub = await cluster.connection_of(HUB)
        hub.reconnect_callbacks.add(on_reconnect)
        scenario, bills = mixed_scenario(BILLS, seed=30)
        world = World(cluster, client, scenario)
        await world.start()
        run = Run(world, bills, prefix="drop")

        run.submit(BILLS // 2)
        await eventually(
            lambda: unfinished(cluster) >= 5, "transfers in flight", timeout=20, interval=0.005
        )
        if how is None:
            name = f"{topology.namespace}-{HUB}"
            await asyncio.to_thread(close_connection_by_name, name)
        else:
            assert how.disconnect() >= 1
        run.submit(BILLS // 2)
        async with asyncio.timeout(30):
            await reconnected.wait()

        outcomes = await run.outcomes()

        assert len(outcomes) == BILLS
        ledger = await world.settle_and_check()
        assert_outcomes_match_books(cluster, ledger, outcomes)
        assert ledger.moved_fen == sum(o.paid_fen for _, o in outcomes.values())
