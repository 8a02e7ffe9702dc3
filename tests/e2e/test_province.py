"""Regions hosted by province, on real processes and the real broker.

Guangdong's two regions (Guangzhou 440100, Shenzhen 440300) run in one process, on one
connection, as the province host's broker user; Shanghai and Wuhan each have a host of
their own. Co-payments between the hosted regions and other provinces' regions settle;
kill -9 of the Guangdong host under load, then a restart, loses nothing and the audit is
clean. The clearinghouse serves each province through its host's mailbox (one envelope
for all of a province's regions). The province's user speaks for its own regions and no
others: the broker refuses it another province's queue and mailbox, publishing to any
mailbox, and another user's identity; the clearinghouse refuses its answers for another
province's region.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import aiormq.exceptions
import pytest

from broker.connection import connect
from broker.publisher import Publisher, PublishError
from broker.testing import dead_letter_messages, queue_depth, unique_namespace
from broker.topology import Topology, declare_service_queue
from clearinghouse.service import clearinghouse_database
from contracts.codec import decode
from contracts.identifiers import CLEARINGHOUSE, mailbox_address, region_address
from contracts.operations import Commit, ReserveResult, SubmitBill
from contracts.participants import province, region
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import (
    LOAD_CLIENT,
    ClusterConfig,
    ClusterState,
    cluster_down,
    cluster_up,
    consumers,
    delete_queues,
    free_port_block,
    restart_service,
    signal_service,
)
from gongji.ledger_audit import audit_data_dir
from gongji.load.generator import LoadConfig
from gongji.load.report import Target, run_load

pytestmark = [pytest.mark.broker, pytest.mark.slow]

GUANGZHOU, SHENZHEN, SHANGHAI, WUHAN = "440100", "440300", "310000", "420100"
GUANGDONG, HUBEI = "440000", "420000"
CODES = [GUANGZHOU, SHENZHEN, SHANGHAI, WUHAN]


def hosted_by_province(
    amqp_url: str, data_dir: Path, codes: list[str], persons: int, name: str
) -> ClusterConfig:
    """A local cluster of ``codes``, hosted by province (``cluster up``'s default)."""
    return ClusterConfig(
        amqp_url=amqp_url,
        data_dir=data_dir,
        regions=regions_by_code(codes),
        namespace=unique_namespace(name),
        base_port=free_port_block(len(codes)),
        persons_per_region=persons,
        log_level="WARNING",
    )


@pytest.fixture(scope="module")
def cluster(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterState]:
    """Four regions of three provinces, hosted by province (three region processes)."""
    data_dir = tmp_path_factory.mktemp("province")
    config = hosted_by_province(amqp_url, data_dir, CODES, 100, "province")
    state = asyncio.run(cluster_up(config))
    try:
        yield state
    finally:
        cluster_down(data_dir)
        asyncio.run(delete_queues(amqp_url, state))


def connections_of(user: str) -> int:
    """How many connections the broker has of ``user`` (rabbitmqctl, as the cluster's
    users are created)."""
    done = subprocess.run(
        ["rabbitmqctl", "list_connections", "user", "--silent", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sum(1 for line in done.stdout.splitlines() if line.strip() == user)


@pytest.mark.timeout(120)
def test_a_province_host_runs_its_regions_in_one_process_on_one_connection(
    cluster: ClusterState,
) -> None:
    hosts = {s.name: s.codes for s in cluster.services}
    assert hosts == {
        "clearinghouse": [],
        f"province-{GUANGDONG}": [GUANGZHOU, SHENZHEN],
        "province-310000": [SHANGHAI],
        "province-420000": [WUHAN],
    }
    user = province(GUANGDONG).user(cluster.namespace)
    assert connections_of(user) == 1
    assert connections_of(region(SHENZHEN).user(cluster.namespace)) == 0
    # Each region keeps its own database.
    for code in (GUANGZHOU, SHENZHEN):
        assert (Path(cluster.data_dir) / f"region-{code}.sqlite").is_file()


async def _leave(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.reject(requeue=True)


async def _refused_consuming(url: str, queue: str) -> bool:
    connection = await connect(url, name="test-province-consume")
    try:
        channel = await connection.channel()
        try:
            target = await channel.get_queue(queue, ensure=False)
            tag = await target.consume(_leave, timeout=10)
        except aiormq.exceptions.ChannelAccessRefused:
            return True
        await target.cancel(tag)
        with contextlib.suppress(Exception):
            await channel.close()
        return False
    finally:
        await connection.close()


async def _refused_declaring(url: str, topology: Topology, address: str) -> bool:
    connection = await connect(url, name="test-province-declare")
    try:
        channel = await connection.channel()
        try:
            await declare_service_queue(channel, topology, address)
        except aiormq.exceptions.ChannelAccessRefused:
            return True
        with contextlib.suppress(Exception):
            await channel.close()
        return False
    finally:
        await connection.close()


@pytest.mark.timeout(120)
async def test_a_province_user_speaks_for_its_regions_and_no_others(
    cluster: ClusterState, amqp_url: str
) -> None:
    topology = Topology(cluster.namespace)
    guangdong = cluster.url_for(province(GUANGDONG))
    # Its own regions' queues: declared (idempotently, as its host does).
    assert not await _refused_declaring(guangdong, topology, region_address(SHENZHEN))
    assert not await _refused_declaring(guangdong, topology, mailbox_address(GUANGDONG))
    # Another province's region or mailbox: neither read nor declared; nor the hub's.
    assert await _refused_consuming(guangdong, topology.queue_for(region_address(WUHAN)))
    assert await _refused_declaring(guangdong, topology, region_address(WUHAN))
    assert await _refused_consuming(guangdong, topology.queue_for(mailbox_address(HUBEI)))
    assert await _refused_declaring(guangdong, topology, mailbox_address(HUBEI))
    assert await _refused_consuming(guangdong, topology.queue_for(CLEARINGHOUSE))
    # Publishing as Wuhan's user: the broker checks user_id against the login.
    plain = await aio_pika.connect(guangdong)
    try:
        channel = await plain.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.exchange, ensure=False)
        forged = aio_pika.Message(b"x", user_id=region(WUHAN).user(cluster.namespace))
        with pytest.raises(Exception, match="user_id"):
            await exchange.publish(forged, routing_key=CLEARINGHOUSE, timeout=10)
    finally:
        await plain.close()
    # Routing: a province host never addresses a region (nor does a region).
    connection = await connect(guangdong, name="test-province-forger")
    try:
        publisher = await Publisher.open(connection, topology, region_address(SHENZHEN))
        with pytest.raises(PublishError):
            await publisher.publish({region_address(WUHAN): [ReserveResult("p-1", WUHAN, 1)]})
        with contextlib.suppress(Exception):
            await publisher.close()
        # Nor any mailbox, its own included: only the clearinghouse sends there.
        for mailbox in (mailbox_address(HUBEI), mailbox_address(GUANGDONG)):
            publisher = await Publisher.open(connection, topology, region_address(SHENZHEN))
            with pytest.raises(PublishError):
                await publisher.publish(
                    {mailbox: [ReserveResult("p-2", SHENZHEN, 1)]}, {mailbox: [SHENZHEN]}
                )
            with contextlib.suppress(Exception):
                await publisher.close()
        # Answers: for Shenzhen accepted (an unknown transfer, ignored), for Wuhan refused.
        publisher = await Publisher.open(connection, topology, region_address(SHENZHEN))
        await publisher.publish({CLEARINGHOUSE: [ReserveResult("own-answer", SHENZHEN, 1)]})
        await publisher.publish({CLEARINGHOUSE: [ReserveResult("impersonated", WUHAN, 1)]})
        await publisher.close()
    finally:
        await connection.close()
    dead = await _dead_letters(amqp_url, topology, expect=1)
    # The clearinghouse consumes in order: the first answer was taken before the second.
    assert [decode(body).operations for body in dead] == [[ReserveResult("impersonated", WUHAN, 1)]]


async def _dead_letters(amqp_url: str, topology: Topology, expect: int) -> list[bytes]:
    admin = await connect(amqp_url, name="test-province-dead-letters")
    try:
        return await dead_letter_messages(admin, topology, expect=expect, timeout=30)
    finally:
        await admin.close()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _rejected(port: int) -> dict[str, float]:
    """Refused messages of a province's mailbox, by reason, from its host's metrics."""
    text = _metrics(port)
    pattern = (
        rf'^gongji_rejected_messages_total\{{reason="([^"]+)",service="province-{GUANGDONG}"\}}'
        r" (\S+)$"
    )
    return {reason: float(value) for reason, value in re.findall(pattern, text, re.M)}


@pytest.mark.timeout(120)
async def test_a_mailbox_refuses_a_clients_forgery_and_a_region_it_does_not_host(
    cluster: ClusterState, amqp_url: str
) -> None:
    topology = Topology(cluster.namespace)
    mailbox = mailbox_address(GUANGDONG)
    host = next(s for s in cluster.services if s.name == f"province-{GUANGDONG}")
    before = _rejected(host.metrics_port)
    client = LOAD_CLIENT.address
    connection = await connect(cluster.url_for(LOAD_CLIENT), name="test-mailbox-forger")
    try:
        publisher = await Publisher.open(connection, topology, client)
        # The broker lets a client publish to a mailbox; the engine holds every
        # operation to its sender's rules: a client never commits a hold.
        await publisher.publish({mailbox: [Commit("forged-commit")]}, {mailbox: [GUANGZHOU]})
        # A bill for Wuhan, in Guangdong's mailbox.
        bill = SubmitBill("misrouted-bill", f"{WUHAN}-000001", 100, client)
        await publisher.publish({mailbox: [bill]}, {mailbox: [WUHAN]})
        await publisher.close()
    finally:
        await connection.close()
    dead = await _dead_letters(amqp_url, topology, expect=2)
    assert sorted(op.TAG for body in dead for op in decode(body).operations) == [
        "commit",
        "submit_bill",
    ]
    after = _rejected(host.metrics_port)
    for reason in ("forbidden", "misrouted"):
        assert after.get(reason, 0) == before.get(reason, 0) + 1, (reason, after)


def _kill_and_restart(data_dir: Path, name: str) -> None:
    signal_service(data_dir, name, signal.SIGKILL)
    restart_service(data_dir, name)


def _committed_pairs(data_dir: Path) -> set[tuple[str, str]]:
    """(payer region, payee region) of the committed co-payments."""
    path = clearinghouse_database(data_dir)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT payer_region, payee_region FROM transfers WHERE state = 'committed'"
        ).fetchall()
    return {(str(a), str(b)) for a, b in rows}


@pytest.mark.timeout(300)
async def test_kill_9_of_a_province_host_under_load_loses_nothing(
    cluster: ClusterState, amqp_url: str
) -> None:
    data_dir = Path(cluster.data_dir)
    host = f"province-{GUANGDONG}"
    target = Target(cluster.namespace, cluster.population(), data_dir)
    config = LoadConfig(rate=100, duration_s=10, cross_province=1.0, drain_s=120)
    load = asyncio.create_task(run_load(cluster.url_for(LOAD_CLIENT), target, config))
    await asyncio.sleep(3.0)
    await asyncio.to_thread(_kill_and_restart, data_dir, host)
    report = await load

    assert report.result.sent >= 900
    assert report.errors()["timeouts"] == 0, report.errors()  # every request final
    assert report.conserved is True, report.books
    pairs = _committed_pairs(data_dir)
    # Co-payments between the hosted regions and other provinces, both ways.
    for hosted in (GUANGZHOU, SHENZHEN):
        assert any(payer == hosted and payee in (SHANGHAI, WUHAN) for payer, payee in pairs)
        assert any(payee == hosted and payer in (SHANGHAI, WUHAN) for payer, payee in pairs)
    connection = await connect(amqp_url, name="province-kill-check")
    try:
        dead = await queue_depth(connection, Topology(cluster.namespace).dead_letter_queue)
    finally:
        await connection.close()
    assert dead == 0, f"{dead} messages were dead-lettered"
    audit = await asyncio.to_thread(audit_data_dir, data_dir)
    assert audit.ok, [str(v) for v in audit.violations[:10]]


def _messages_in(port: int) -> dict[str, float]:
    """Envelopes received, by service, from a process's metrics."""
    text = _metrics(port)
    pattern = r'^gongji_messages_total\{direction="in",service="([^"]+)"\} (\S+)$'
    return {name: float(value) for name, value in re.findall(pattern, text, re.M)}


@pytest.mark.timeout(120)
async def test_the_clearinghouse_serves_a_province_through_its_mailbox(
    cluster: ClusterState, amqp_url: str
) -> None:
    assert cluster.mailboxes  # cluster up's default when hosting by province
    host = next(s for s in cluster.services if s.name == f"province-{GUANGDONG}")
    before = _messages_in(host.metrics_port)
    target = Target(cluster.namespace, cluster.population(), Path(cluster.data_dir))
    target.mailboxes = True  # the load client sends its bills to the mailboxes too
    config = LoadConfig(rate=100, duration_s=3, cross_province=1.0, drain_s=60)
    report = await run_load(cluster.url_for(LOAD_CLIENT), target, config)
    assert report.errors()["timeouts"] == 0 and report.conserved is True
    assert report.result.completed == report.result.sent
    after = _messages_in(host.metrics_port)
    # The mailbox took every envelope, the clearinghouse's and the client's; the
    # regions' own queues none of this run's.
    assert after[f"province-{GUANGDONG}"] > before.get(f"province-{GUANGDONG}", 0), after
    for code in (GUANGZHOU, SHENZHEN):
        assert after.get(f"region-{code}", 0) == before.get(f"region-{code}", 0), after
    connection = await connect(amqp_url, name="province-mailbox-check")
    try:
        for province_code in (GUANGDONG, HUBEI, "310000"):
            queue = Topology(cluster.namespace).queue_for(mailbox_address(province_code))
            _, n_consumers = await consumers(connection, queue)
            assert n_consumers == 1, queue
    finally:
        await connection.close()


@pytest.mark.timeout(60)
def test_a_host_refuses_to_start_for_a_region_its_user_does_not_speak_for(
    cluster: ClusterState, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gongji.cli",
            "region",
            "--code",
            WUHAN,
            "--namespace",
            cluster.namespace,
            "--data-dir",
            str(tmp_path),
            "--amqp-url",
            cluster.url_for(province(GUANGDONG)),
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"gongji: region-{WUHAN}: broker user of province.{GUANGDONG} does not speak for "
        f"region {WUHAN}"
    )


@pytest.mark.timeout(120)
def test_every_host_stops_on_sigterm_without_being_killed(amqp_url: str, tmp_path: Path) -> None:
    """A region's own shell beside its mailbox hardly ever ticks; it still notices the stop
    (a cluster of its own: the module's is still in use by the tests above)."""
    codes = [GUANGZHOU, SHENZHEN, WUHAN]
    config = hosted_by_province(amqp_url, tmp_path, codes, 20, "province-stop")
    state = asyncio.run(cluster_up(config))
    try:
        report = cluster_down(tmp_path, grace_s=8.0)
        assert report.killed == [], report
        assert sorted(report.stopped) == sorted(s.name for s in state.services)
    finally:
        asyncio.run(delete_queues(amqp_url, state))
