"""deploy/rabbitmq on a real RabbitMQ: a private node booted from the deploy files.

The node reads deploy/rabbitmq/rabbitmq.conf (only ports moved to free loopback ones and
the definitions path to a copy), enabled_plugins and definitions.json as they are. Then
the real services run on it, each as the broker user compose.yaml gives it, and settle
bills; a service cannot touch queues that are not its own; the Prometheus endpoint
exports every RabbitMQ metric the dashboard and the alerts use.

The packaged broker here is RabbitMQ 3.10, compose runs 3.13: both read the same
configuration keys and definitions format.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiormq.exceptions
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.connection import BrokerUnavailable, connect
from broker.publisher import Publisher, group_by_address
from broker.testing import dead_letter_messages
from broker.topology import Topology, declare_service_queue, declare_topology
from clearinghouse.service import ClearinghouseService
from contracts.codec import decode
from contracts.identifiers import CLEARINGHOUSE, client_address, region_address
from contracts.operations import Commit, Operation, ReserveResult, SubmitBill
from contracts.reasons import COMMITTED, ReasonCode
from gongji.client import BillClient
from regions.host import RegionHost
from tests.deploy import promql
from tests.deploy.artefacts import (
    ALERTS,
    DASHBOARD,
    RABBITMQ_CONF,
    RABBITMQ_DEFINITIONS,
    RABBITMQ_PLUGINS,
    command,
    container_env,
    gongji_services,
    load_yaml,
    parse_amqp_url,
    require_tool,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

BOOT_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
ADMIN = ("admin", "admin-dev-only")
NAMESPACE = "gongji"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def loopback_config(text: str, ports: dict[str, int], definitions: Path) -> str:
    """The deploy config with its listeners on loopback ports and the definitions copied."""
    replacements = {
        "listeners.tcp.default": f"listeners.tcp.local = 127.0.0.1:{ports['amqp']}",
        "management.tcp.port": f"management.tcp.port = {ports['management']}\n"
        "management.tcp.ip = 127.0.0.1",
        "prometheus.tcp.port": f"prometheus.tcp.port = {ports['prometheus']}\n"
        "prometheus.tcp.ip = 127.0.0.1",
        "load_definitions": f"load_definitions = {definitions}",
    }
    for key, line in replacements.items():
        pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
        text, count = pattern.subn(line, text)
        assert count == 1, f"{RABBITMQ_CONF}: expected one {key} line, found {count}"
    return text


@dataclass(frozen=True)
class Node:
    amqp: int
    management: int
    prometheus: int

    def url(self, user: str, password: str, vhost: str = NAMESPACE) -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.amqp}/{vhost}"

    def service_url(self, service: str) -> str:
        """The AMQP URL compose.yaml gives ``service``, pointed at this node."""
        url = parse_amqp_url(container_env(gongji_services()[service])["AMQP_URL"])
        return self.url(url.user, url.password, url.vhost)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    server = require_tool(
        "rabbitmq-server",
        "install RabbitMQ (Debian: apt-get install rabbitmq-server)",
        "/usr/lib/rabbitmq/bin/rabbitmq-server",  # the real script, not Debian's su wrapper
    )
    ports = {k: free_port() for k in ("amqp", "management", "prometheus", "dist")}
    home = Path(tempfile.mkdtemp(prefix="gongji-deploy-rabbitmq-"))
    try:
        definitions = home / "definitions.json"
        shutil.copyfile(RABBITMQ_DEFINITIONS, definitions)
        shutil.copyfile(RABBITMQ_PLUGINS, home / "enabled_plugins")
        config = loopback_config(RABBITMQ_CONF.read_text(encoding="utf-8"), ports, definitions)
        (home / "rabbitmq.conf").write_text(config, encoding="utf-8")
        (home / "conf.d").mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # the node's own Erlang cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_NODENAME": f"gongji-deploy-{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(home / "conf.d"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        log_path = home / "rabbitmq.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [server],
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended by id below
            )
        try:
            started = Node(ports["amqp"], ports["management"], ports["prometheus"])
            _wait_for_boot(process, started, log_path)
            yield started
        finally:
            _stop(process)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _wait_for_boot(process: subprocess.Popen[bytes], node: Node, log_path: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if "Server startup complete" in text and all(
            listening(p) for p in (node.amqp, node.management, node.prometheus)
        ):
            return
        time.sleep(0.5)
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
    pytest.fail(f"RabbitMQ did not boot from the deploy config:\n{tail}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def connected(url: str, name: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(url, name=name)
    try:
        yield connection
    finally:
        await connection.close()


def hosted_regions() -> dict[str, list[str]]:
    """Region codes by the province host service that runs them."""
    return {
        name: argv[argv.index("--regions") + 1].split(",")
        for name, argv in ((n, command(s)) for n, s in gongji_services().items())
        if argv[:1] == ["province"]
    }


def region_codes() -> list[str]:
    return [code for codes in hosted_regions().values() for code in codes]


def host_of(code: str) -> str:
    """The compose service hosting region ``code``."""
    return next(name for name, codes in hosted_regions().items() if code in codes)


# --- users ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_guest_does_not_exist(node: Node) -> None:
    with pytest.raises(BrokerUnavailable, match=r"ACCESS_REFUSED|refused|auth"):
        async with connected(node.url("guest", "guest", "/"), "guest"):
            pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("service", sorted(gongji_services()))
async def test_each_service_logs_in_as_its_own_user(node: Node, service: str) -> None:
    async with connected(node.service_url(service), f"login-{service}") as connection:
        channel = await connection.channel()
        await channel.close()


@pytest.mark.timeout(60)
def test_the_management_ui_takes_the_admin_and_no_service_user(node: Node) -> None:
    def whoami(user: str, password: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{node.management}/api/whoami")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert whoami(*ADMIN) == 200
    seed = parse_amqp_url(container_env(gongji_services()["seed"])["AMQP_URL"])
    assert whoami(seed.user, seed.password) == 401


# --- the services, each as its own user -----------------------------------------------


@pytest.mark.timeout(120)
async def test_the_services_settle_bills_each_as_its_own_broker_user(
    node: Node, tmp_path: Path
) -> None:
    from gongji.cluster.seed import seed_population
    from gongji.deploy import shipped_regions

    topology = Topology(namespace=NAMESPACE)
    codes = region_codes()
    seeded = seed_population(shipped_regions(), 8, seed=1)
    async with contextlib.AsyncExitStack() as stack:
        running: list[tuple[asyncio.Event, asyncio.Task[None], Coroutine[Any, Any, Any]]] = []

        async def start(name: str, make: object) -> None:
            connection = await stack.enter_async_context(
                connected(node.service_url(name), f"test-{name}")
            )
            assert callable(make)
            service = make(connection)
            stop = asyncio.Event()
            task = asyncio.get_running_loop().create_task(service.run(stop))
            started = (
                service.wait_started()
                if isinstance(service, RegionHost)
                else service.shell.ready.wait()
            )
            running.append((stop, task, started))

        await start(
            "clearinghouse",
            lambda c: ClearinghouseService(data_dir=tmp_path, connection=c, topology=topology),
        )
        for name, hosted in hosted_regions().items():
            await start(
                name,
                lambda c, hosted=hosted: RegionHost(
                    hosted, data_dir=tmp_path, connection=c, topology=topology
                ),
            )
        try:
            for _, task, started in running:
                waiter = asyncio.ensure_future(started)
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    waiter.cancel()
                    task.result()  # a permission refused shows here
            # The seed's part: regions (Beijing not enabled), persons, bindings.
            async with connected(node.service_url("seed"), "test-seed") as connection:
                publisher = await Publisher.open(connection, topology, client_address("seed"))
                await publisher.publish(group_by_address(seeded.population.setup_operations()))
                await publisher.close()
            # The load generator's part: one bill per region, for a cross-province family.
            async with connected(node.service_url("load"), "test-load") as connection:
                client = await BillClient.open(connection, topology, "load-test")
                try:
                    outcomes = {
                        code: await client.submit(
                            code,
                            SubmitBill(
                                f"deploy-{code}",
                                seeded.cross_province[code][0],
                                12_345,
                                client.address,
                            ),
                            timeout_s=30,
                        )
                        for code in codes
                    }
                finally:
                    await client.close()
            # Forgeries under compose's users: refused by the services, dead-lettered.
            forged = await _forge_under_compose_users(node, topology, codes)
        finally:
            for stop, _, _ in running:
                stop.set()
            await asyncio.gather(*(task for _, task, _ in running), return_exceptions=True)
    assert forged == {"forbidden-commit", "impersonated-answer"}
    enabled = {r.code: r.enabled for r in shipped_regions()}
    got = {code: outcome.outcome for code, outcome in outcomes.items()}
    assert got == {
        code: COMMITTED if enabled[code] else ReasonCode.REGION_NOT_ENABLED.value for code in codes
    }


async def _forge_under_compose_users(node: Node, topology: Topology, codes: list[str]) -> set[str]:
    """The load generator's user sends the hub's Commit to a region; a region's user
    answers for another region. Returns the forged transfer ids found dead-lettered."""
    first, second = codes[0], codes[1]
    forgeries: list[tuple[str, str, list[Operation]]] = [
        ("load", region_address(first), [Commit("forbidden-commit")]),
        (
            host_of(first),
            CLEARINGHOUSE,
            [ReserveResult("impersonated-answer", second, 1_000_000)],
        ),
    ]
    for service, address, ops in forgeries:
        async with connected(node.service_url(service), f"forger-{service}") as connection:
            publisher = await Publisher.open(connection, topology, CLEARINGHOUSE)
            await publisher.publish({address: ops})
            await publisher.close()
    found: set[str] = set()
    async with connected(node.url(*ADMIN), "test-dead-letters") as connection:
        deadline = time.monotonic() + 20
        while len(found) < len(forgeries) and time.monotonic() < deadline:
            for body in await dead_letter_messages(connection, topology, timeout=1):
                found |= {str(getattr(op, "transfer_id", "")) for op in decode(body).operations}
    return found


# --- permissions --------------------------------------------------------------------------


async def _leave(message: AbstractIncomingMessage) -> None:
    await message.reject(requeue=True)


async def _refused(url: str, *, consume: str = "", declare: str = "") -> bool:
    """Whether the broker refuses this user consuming queue ``consume`` or declaring the
    service queue of address ``declare`` (as the services do, dead-letter exchange and
    binding included)."""
    async with connected(url, "test-permissions") as connection:
        channel = await connection.channel()
        try:
            if declare:
                await declare_service_queue(channel, Topology(NAMESPACE), declare)
            else:
                target = await channel.get_queue(consume, ensure=False)
                await target.consume(_leave, timeout=10)
        except aiormq.exceptions.ChannelAccessRefused:
            return True
        with contextlib.suppress(Exception):
            await channel.close()
        return False


@pytest.mark.timeout(120)
async def test_each_service_may_use_its_queues_and_no_other(node: Node) -> None:
    topology = Topology(NAMESPACE)
    codes = region_codes()
    first, second = codes[0], codes[1]
    async with connected(node.url(*ADMIN), "test-admin") as connection:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        for address in (CLEARINGHOUSE, *(region_address(c) for c in codes)):
            await declare_service_queue(channel, topology, address)
        await channel.close()
    mine, theirs = region_address(first), region_address(second)
    region = node.service_url(host_of(first))
    assert not await _refused(region, consume=topology.queue_for(mine))
    assert not await _refused(region, declare=mine)
    # Only the clearinghouse may declare (and so delete) its queue.
    assert await _refused(region, declare=CLEARINGHOUSE)
    assert await _refused(region, consume=topology.queue_for(theirs))
    assert await _refused(region, declare=theirs)
    assert await _refused(region, consume=topology.dead_letter_queue)
    clearinghouse = node.service_url("clearinghouse")
    assert not await _refused(clearinghouse, consume=topology.queue_for(CLEARINGHOUSE))
    for code in codes:  # on RegionRegistered
        assert not await _refused(clearinghouse, declare=region_address(code))
    assert await _refused(clearinghouse, consume=topology.dead_letter_queue)
    # The load generator is a plain client. (The seed is an operator: it declares the
    # namespace's queues, which needs read on each, as for the clearinghouse above.)
    load = node.service_url("load")
    assert await _refused(load, consume=topology.queue_for(CLEARINGHOUSE))
    assert await _refused(load, consume=topology.queue_for(mine))
    assert await _refused(load, declare=mine)
    # No service may delete the shared exchange or the dead-letter queue (only the
    # operator configures them).
    for url in (region, clearinghouse, load):
        assert await _delete_refused(url, exchange=topology.exchange)
        assert await _delete_refused(url, queue=topology.dead_letter_queue)
    # Routing the broker enforces (topic permissions): a region never addresses another
    # region, a client never the clearinghouse.
    assert await _publish_refused(region, theirs)
    assert not await _publish_refused(region, CLEARINGHOUSE)
    assert await _publish_refused(node.service_url("load"), CLEARINGHOUSE)
    assert not await _publish_refused(node.service_url("load"), mine)
    assert not await _publish_refused(clearinghouse, theirs)


async def _delete_refused(url: str, *, exchange: str = "", queue: str = "") -> bool:
    """Whether the broker refuses this user deleting ``exchange`` or ``queue``."""
    async with connected(url, "test-delete") as connection:
        channel = await connection.channel()
        try:
            if exchange:
                await channel.exchange_delete(exchange)
            else:
                await channel.queue_delete(queue)
        except aiormq.exceptions.ChannelAccessRefused:
            return True
        with contextlib.suppress(Exception):
            await channel.close()
        return False


async def _publish_refused(url: str, address: str) -> bool:
    """Whether the broker refuses this user publishing to routing key ``address``."""
    async with connected(url, "test-routing") as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Topology(NAMESPACE).exchange, ensure=False)
        try:
            await exchange.publish(Message(b"probe"), routing_key=address, timeout=10)
        except (aiormq.exceptions.ChannelAccessRefused, aiormq.exceptions.PublishError):
            return True
        except aiormq.exceptions.AMQPError as error:
            return "ACCESS_REFUSED" in str(error)
        with contextlib.suppress(Exception):
            await channel.close()
        return False


# --- metrics --------------------------------------------------------------------------------


def rabbitmq_metrics_used() -> set[str]:
    exprs = [rule["expr"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    used: set[str] = set()
    for expr in exprs:
        used |= {m for m in promql.references(expr).metrics if m.startswith("rabbitmq_")}
    return used


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


@pytest.mark.timeout(120)
async def test_the_prometheus_endpoint_exports_what_dashboard_and_alerts_use(node: Node) -> None:
    topology = Topology(NAMESPACE)
    queue = topology.queue_for(region_address(region_codes()[0]))
    async with connected(node.url(*ADMIN), "test-metrics") as connection:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        await declare_service_queue(channel, topology, region_address(region_codes()[0]))
        await channel.close()
    used = rabbitmq_metrics_used()
    assert used, "the dashboard and alerts use no RabbitMQ metric?"
    assert used <= promql.RABBITMQ_METRICS
    # Queue statistics reach the endpoint on the broker's next collection (every 5 s).
    deadline = time.monotonic() + 60
    missing: set[str] = set(used)
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(scrape, node.prometheus)
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
        missing = used - names
        if not missing and f'queue="{queue}"' in text:
            break
        await asyncio.sleep(1)
    assert missing == set(), f"RabbitMQ does not export {sorted(missing)}"
    assert f'vhost="{NAMESPACE}",queue="{queue}"' in text, "no per-queue series"
