"""A crash loop under load loses nothing: real processes, kill -9, an independent audit.

Under a 300/s load, a service is killed with SIGKILL seven times, each 0.5 s after its
metrics port answers (it has just started consuming, its prefetch full), and started
again. Before the step engine counted its own handling failures, every kill counted
towards the quorum queues' delivery limit of 5, and healthy messages were dead-lettered
with their requests lost. Now: every request gets its final outcome, the dead-letter
queue stays empty, and the audit of the SQLite files finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.connection import connect
from broker.testing import queue_depth
from broker.topology import Topology
from gongji.cluster.local import (
    LOAD_CLIENT,
    ClusterState,
    find_service,
    metrics_answer,
    read_state,
    restart_service,
    signal_service,
)
from gongji.ledger_audit import audit_data_dir
from gongji.load.generator import LoadConfig
from gongji.load.report import Target, run_load
from tests.e2e.conftest import own_cluster

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KILLS = 7
AFTER_START_S = 0.5


@pytest.fixture
def cluster(amqp_url: str, tmp_path: Path) -> Iterator[ClusterState]:
    """A cluster of its own: its services are killed."""
    with own_cluster(amqp_url, tmp_path / "cluster", "crash") as state:
        yield state


def crash_loop(data_dir: Path, name: str) -> int:
    """Kill ``name`` KILLS times, each AFTER_START_S after it answers; return the kills."""
    kills = 0
    for _ in range(KILLS):
        state = read_state(data_dir)
        assert state is not None
        record = find_service(state, name)
        deadline = time.monotonic() + 30
        while not metrics_answer(record):
            assert time.monotonic() < deadline, f"{name} did not come back"
            time.sleep(0.05)
        time.sleep(AFTER_START_S)
        signal_service(data_dir, name, signal.SIGKILL)
        kills += 1
        restart_service(data_dir, name)
    return kills


@pytest.mark.timeout(300)
@pytest.mark.parametrize("victim", ["clearinghouse", "region-310000"])
async def test_a_crash_loop_under_load_loses_nothing(
    cluster: ClusterState, amqp_url: str, victim: str
) -> None:
    data_dir = Path(cluster.data_dir)
    target = Target(cluster.namespace, cluster.population(), data_dir)
    config = LoadConfig(rate=300, duration_s=12, cross_province=0.8, skew=0.5, drain_s=120)
    load = asyncio.create_task(run_load(cluster.url_for(LOAD_CLIENT), target, config))
    await asyncio.sleep(1.0)
    kills = await asyncio.to_thread(crash_loop, data_dir, victim)
    report = await load

    assert kills == KILLS
    assert report.result.sent > 2_000
    assert report.errors()["timeouts"] == 0, report.errors()  # every request final
    assert report.conserved is True, report.books
    if victim == "clearinghouse":
        # Resumed steps get fresh deadlines: no healthy payer is timed out by a restart.
        assert report.outcomes().get("TIMEOUT", 0) == 0, report.outcomes()
    connection = await connect(amqp_url, name="crash-loop-check")
    try:
        dead = await queue_depth(connection, Topology(cluster.namespace).dead_letter_queue)
    finally:
        await connection.close()
    assert dead == 0, f"{dead} messages were dead-lettered"
    audit = await asyncio.to_thread(audit_data_dir, data_dir)
    assert audit.ok, [str(v) for v in audit.violations[:10]]
