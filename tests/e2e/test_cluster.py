"""``gongji cluster up`` / ``down``: the processes it starts, and only those, are stopped."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from broker.connection import BrokerUnavailable
from broker.testing import unique_namespace
from broker.users import list_users
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import (
    AlreadyUp,
    ClusterConfig,
    NotUp,
    PortInUse,
    cluster_down,
    cluster_up,
    delete_queues,
    free_port_block,
    is_running,
    read_state,
)

pytestmark = pytest.mark.broker


def config(amqp_url: str, data_dir: Path, base_port: int) -> ClusterConfig:
    return ClusterConfig(
        amqp_url=amqp_url,
        data_dir=data_dir,
        regions=regions_by_code(["310000", "420100"]),
        namespace=unique_namespace("e2e-down"),
        base_port=base_port,
        persons_per_region=10,
    )


@pytest.mark.timeout(120)
def test_down_stops_exactly_the_processes_up_started(amqp_url: str, tmp_path: Path) -> None:
    base = free_port_block(3)
    state = asyncio.run(cluster_up(config(amqp_url, tmp_path, base)))
    try:
        assert [s.name for s in state.services] == [
            "clearinghouse",
            "province-310000",
            "province-420000",
        ]
        assert [s.codes for s in state.services] == [[], ["310000"], ["420100"]]
        assert all(is_running(s) for s in state.services)
        assert Path(state.scrape_config).read_text().count("127.0.0.1:") == 3
        with pytest.raises(AlreadyUp, match="already up"):
            asyncio.run(cluster_up(config(amqp_url, tmp_path, free_port_block(3))))

        # A bystander whose PID the state file claims, but whose start time differs
        # (as when a PID is reused): down must leave it alone.
        bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        data = json.loads((tmp_path / "cluster.json").read_text())
        data["services"].append({**data["services"][-1], "name": "bystander", "pid": bystander.pid})
        (tmp_path / "cluster.json").write_text(json.dumps(data))

        report = cluster_down(tmp_path, grace_s=10)

        assert sorted(report.stopped + report.killed) == sorted(s.name for s in state.services)
        assert report.gone == ["bystander"]
        assert not any(is_running(s) for s in state.services)
        assert bystander.poll() is None
        bystander.kill()
        bystander.wait()
        assert read_state(tmp_path) is None
        with pytest.raises(NotUp, match="no local cluster"):
            cluster_down(tmp_path)
    finally:
        if read_state(tmp_path) is not None:
            cluster_down(tmp_path)
        asyncio.run(delete_queues(amqp_url, state))


@pytest.mark.timeout(60)
async def test_up_refuses_a_port_in_use(amqp_url: str, tmp_path: Path) -> None:
    base = free_port_block(3)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        with pytest.raises(PortInUse, match=f"{base + 1} \\(province-310000\\)"):
            await cluster_up(config(amqp_url, tmp_path, base))
    assert read_state(tmp_path) is None


@pytest.mark.timeout(60)
async def test_up_says_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    closed = free_port_block(1)
    unreachable = config(f"amqp://guest:guest@127.0.0.1:{closed}/", tmp_path, closed + 1)
    with pytest.raises(BrokerUnavailable, match="cannot reach RabbitMQ"):
        await cluster_up(unreachable)
    assert read_state(tmp_path) is None
    # The users were made with rabbitmqctl before the URL failed; the failed start
    # removed them again.
    assert not [u for u in list_users() if u.startswith(f"{unreachable.namespace}.")]


@pytest.mark.timeout(60)
def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    down = subprocess.run(
        [sys.executable, "-m", "gongji.cli", "cluster", "down", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1
    assert down.stderr.strip() == (
        f"gongji cluster down: no local cluster is up in {tmp_path.resolve()} "
        "(no cluster.json there)"
    )
