"""A real cluster's files, made once per session: the demo's script played by the real
services on the real RabbitMQ over SQLite files in a directory of the session's.

The scenario is a small cut of the default one: co-payments committed in full and in
part and aborted (zero balance, regions not enabled or not registered), wallet
transfers, premiums paid by co-payers, a region enabled half-way, and a clearing window
closed and reconciled. The audit also runs once while the services still run (their
files open, in WAL mode). Each test gets its own copy of the files to corrupt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import pytest

from broker.testing import TrackedTopology, cleanup_namespace, unique_namespace
from gongji.demo import RabbitNetwork, ScenarioResult, play
from gongji.inprocess import InProcessCluster
from gongji.ledger_audit import AuditResult, audit_data_dir
from gongji.scenario import RolloutStep, Scenario, load_default_scenario

REGIONS = ("310000", "420100", "510100", "540100", "110000")
"""Shanghai and Chengdu pay the co-payer first, Lhasa has no wallet, Beijing starts off."""


def audit_scenario() -> Scenario:
    default = load_default_scenario()
    return dataclasses.replace(
        default,
        name="audit",
        regions=tuple(r for r in default.regions if r.code in REGIONS),
        population=dataclasses.replace(default.population, persons_per_region=40),
        bills=dataclasses.replace(
            default.bills, count=120, wallet_transfers=16, premium_payments=24, binding_requests=4
        ),
        rollout=(RolloutStep(after_bills=60, enable=("110000",)),),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Played:
    data_dir: Path
    """The played cluster's files (read them, never change them)."""
    demo: ScenarioResult
    audit_while_running: AuditResult


async def _play(amqp_url: str, data_dir: Path) -> Played:
    scenario = audit_scenario()
    topology = TrackedTopology(namespace=unique_namespace("audit"))
    try:
        async with InProcessCluster(
            amqp_url, topology, data_dir, regions=scenario.codes, clients=["audit-demo"]
        ) as cluster:
            await cluster.start(scenario.codes)
            client = await cluster.open_client("audit-demo")
            try:
                network = RabbitNetwork(cluster, client, scenario.codes)
                demo = await play(scenario, network, "rabbitmq")
                running = audit_data_dir(data_dir)
            finally:
                await client.close()
                await cluster.stop_all()
    finally:
        await cleanup_namespace(amqp_url, topology)
    return Played(data_dir, demo, running)


@pytest.fixture(scope="session")
def played(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Played:
    played = asyncio.run(_play(amqp_url, tmp_path_factory.mktemp("cluster")))
    assert played.demo.problems == [], played.demo.problems
    return played


@pytest.fixture
def data_dir(played: Played, tmp_path: Path) -> Path:
    """A copy of the played cluster's files, this test's own to corrupt."""
    copy = tmp_path / "data"
    copy.mkdir()
    for path in played.data_dir.glob("*.sqlite*"):
        shutil.copy2(path, copy / path.name)
    return copy
