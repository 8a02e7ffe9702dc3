"""Namespaces: refused in one line when invalid, and agreed between commands: after
``gongji cluster up --namespace X``, the other commands talk to X without being told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from broker.connection import connect
from broker.testing import unique_namespace
from broker.topology import Topology
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import ClusterState
from tests.cli.conftest import RunningCluster, gongji

BAD_NAMESPACES = [
    pytest.param("名字", id="chinese"),
    pytest.param("", id="empty"),
    pytest.param("n" * 300, id="300-characters"),
    pytest.param("nc 1", id="space"),
    pytest.param("NC1", id="upper-case"),
]

# Every command that touches a cluster, with what it needs besides --namespace.
CLUSTER_COMMANDS = [
    pytest.param(["admin", "enable", "110000"], id="admin-enable"),
    pytest.param(["admin", "close-window"], id="admin-close-window"),
    pytest.param(["admin", "seed", "--codes", "310000"], id="admin-seed"),
    pytest.param(["report", "window"], id="report-window"),
    pytest.param(["load", "--codes", "310000,420100", "--duration", "1"], id="load"),
    pytest.param(["cluster", "up", "--regions", "2"], id="cluster-up"),
    pytest.param(["cluster", "status"], id="cluster-status"),
    pytest.param(["cluster", "down"], id="cluster-down"),
    pytest.param(["clearinghouse"], id="clearinghouse"),
    pytest.param(["region", "--code", "420100"], id="region"),
]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def delete_client_topology(amqp_url: str, namespace: str) -> None:
    """What a client declares in a namespace with no cluster: the exchanges and the DLQ."""
    topology = Topology(namespace)
    connection = await connect(amqp_url, name="test-cli-cleanup")
    try:
        channel = await connection.channel()
        with contextlib.suppress(Exception):
            await channel.queue_delete(topology.dead_letter_queue)
            await channel.exchange_delete(topology.exchange)
            await channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        await connection.close()


def assert_one_line_refusal(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("gongji: --namespace: ")
    assert "is not a namespace (1 to 40 of a-z, 0-9, '-' and '_'" in done.stderr
    assert len(done.stderr) < 200
    assert done.stdout == ""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("namespace", BAD_NAMESPACES)
def test_an_invalid_namespace_is_refused_in_one_line(namespace: str, tmp_path: Path) -> None:
    done = gongji("admin", "enable", "110000", "--namespace", namespace, cwd=tmp_path)

    assert_one_line_refusal(done)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", CLUSTER_COMMANDS)
def test_every_cluster_command_refuses_an_invalid_namespace_before_it_connects(
    argv: list[str], tmp_path: Path
) -> None:
    # A broker nothing listens on: a command that tried to connect would say so instead.
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"

    done = gongji(*argv, "--namespace", "nc 1", cwd=tmp_path, env={"AMQP_URL": url})

    assert_one_line_refusal(done)
    assert not (tmp_path / "data").exists()


@pytest.mark.timeout(30)
def test_an_invalid_namespace_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    done = gongji("region", "--code", "420100", cwd=tmp_path, env={"GONGJI_NAMESPACE": "名字"})

    assert_one_line_refusal(done)


@pytest.mark.timeout(30)
def test_help_states_what_a_namespace_may_be() -> None:
    for argv in (["admin", "enable"], ["report", "window"], ["cluster", "up"], ["region"]):
        done = gongji(*argv, "--help")

        assert done.returncode == 0
        assert "1 to 40 of a-z, 0-9, '-' and '_'" in " ".join(done.stdout.split())


@pytest.mark.timeout(30)
def test_the_broker_url_comes_from_the_local_clusters_state(tmp_path: Path) -> None:
    # A state file as `cluster up` writes it, naming a broker nothing listens on.
    port = closed_port()
    state = ClusterState(
        namespace="nc1",
        data_dir=str(tmp_path),
        regions=list(regions_by_code(["310000"])),
        persons_per_region=10,
        seed=1,
        base_port=0,
        scrape_config=str(tmp_path / "prometheus.yml"),
        amqp_url=f"amqp://guest:s3cret@127.0.0.1:{port}/",
    )
    (tmp_path / "cluster.json").write_text(json.dumps(state.to_json()))

    done = gongji("admin", "enable", "110000", "--data-dir", str(tmp_path))

    assert done.returncode == 1
    assert f"gongji: cannot reach RabbitMQ at amqp://guest:******@127.0.0.1:{port}" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_admin_and_report_talk_to_the_clusters_namespace_unasked(
    running_cluster: RunningCluster,
) -> None:
    data_dir = str(running_cluster.data_dir)

    # Neither the namespace nor the broker URL is given: both come from the state file.
    closed = gongji("admin", "close-window", "--json", "--data-dir", data_dir)
    report = gongji("report", "window", "1", "--json", "--data-dir", data_dir)
    nowhere = unique_namespace("cli-none")
    try:
        elsewhere = gongji("report", "window", "1", "--data-dir", data_dir, "--namespace", nowhere)
    finally:
        asyncio.run(delete_client_topology(running_cluster.amqp_url, nowhere))

    assert closed.returncode == 0, closed.stderr
    assert json.loads(closed.stdout)["window"] == 1
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["state"] == "closed"
    # Told another namespace, it goes there, where no clearinghouse listens.
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == (
        "gongji: no queue is bound for address 'clearinghouse'; the broker returned it:"
        f" is a cluster running in namespace {nowhere!r}?\n"
    )


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_cluster_status_and_down_check_the_namespace_they_are_given(
    running_cluster: RunningCluster,
) -> None:
    data_dir = str(running_cluster.data_dir)

    status = gongji("cluster", "status", "--data-dir", data_dir)
    agreed = gongji(
        "cluster", "status", "--data-dir", data_dir, "--namespace", running_cluster.namespace
    )
    other = gongji("cluster", "down", "--data-dir", data_dir, "--namespace", "another-one")

    assert status.returncode == 0, status.stderr
    assert f"namespace {running_cluster.namespace}" in status.stdout
    assert agreed.returncode == 0, agreed.stderr
    assert other.returncode == 2
    assert other.stderr.strip() == (
        f"gongji: the local cluster in {running_cluster.data_dir} runs namespace "
        f"'{running_cluster.namespace}', not 'another-one'"
    )
    # Refused: nothing was stopped.
    assert gongji("cluster", "status", "--data-dir", data_dir).stdout.count(" running") == 3


@pytest.mark.broker
@pytest.mark.timeout(30)
def test_the_state_file_is_readable_by_its_owner_only(running_cluster: RunningCluster) -> None:
    mode = (running_cluster.data_dir / "cluster.json").stat().st_mode

    assert stat.S_IMODE(mode) == 0o600
    assert running_cluster.state.amqp_url == running_cluster.amqp_url
