"""Helpers for tests that talk to a real RabbitMQ (no pytest fixtures here)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aio_pika.abc import AbstractConnection
from yarl import URL

from broker.connection import BrokerUnavailable, connect
from broker.inbox import Delivery, Inbox
from broker.topology import Topology, delete_namespace
from contracts.participants import HUB, Participant, admin, region

RABBITMQ_IMAGE = "rabbitmq:3.10"

_container: Any = None  # the testcontainers broker this process started, if any


def _docker_answers() -> bool:
    try:
        docker = importlib.import_module("docker")
        docker.from_env().ping()
    except Exception:
        return False
    return True


def _start_container() -> str:
    global _container
    try:
        module = importlib.import_module("testcontainers.community.rabbitmq")
    except ImportError:  # testcontainers < 4.10 only has the old location
        module = importlib.import_module("testcontainers.rabbitmq")
    container = module.RabbitMqContainer(RABBITMQ_IMAGE)
    try:
        container.start()
    except BaseException:
        with contextlib.suppress(Exception):
            container.stop()  # do not leave a half-started container behind
        raise
    _container = container
    atexit.register(_stop_container)
    return _container_url(container)


def _container_url(container: Any) -> str:
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    vhost = "" if container.vhost == "/" else quote(container.vhost, safe="")
    return f"amqp://{container.username}:{container.password}@{host}:{port}/{vhost}"


def _stop_container() -> None:
    global _container
    if _container is not None:
        with contextlib.suppress(Exception):
            _container.stop()
        _container = None


def resolve_amqp_url() -> str:
    """``AMQP_URL`` if set; else a RabbitMQ started with testcontainers when Docker
    answers (stopped at exit); else raise ``BrokerUnavailable`` saying what to do."""
    url = os.environ.get("AMQP_URL")
    if url:
        return url
    if _container is not None:
        return _container_url(_container)
    if _docker_answers():
        try:
            return _start_container()
        except Exception as error:
            raise BrokerUnavailable(
                f"AMQP_URL is not set and starting a RabbitMQ container failed: {error}. "
                "Set AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672/) to a running broker."
            ) from error
    raise BrokerUnavailable(
        "these tests need a real RabbitMQ: set AMQP_URL (e.g. "
        "amqp://guest:guest@127.0.0.1:5672/) to a running broker, or run Docker so "
        "testcontainers can start one."
    )


def unique_namespace(prefix: str = "test") -> str:
    """A namespace no other test run uses, e.g. ``test-3f2a9c0d1b7e``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class TrackedTopology(Topology):
    """A ``Topology`` that remembers every address it named a queue for, so a test
    can delete exactly what it created (see ``cleanup_namespace``)."""

    addresses: set[str] = field(default_factory=set, compare=False, hash=False, repr=False)

    def queue_for(self, address: str) -> str:
        """The queue name of ``address``, which is remembered for clean-up."""
        self.addresses.add(address)
        return super().queue_for(address)


async def cleanup_namespace(amqp_url: str, topology: TrackedTopology) -> None:
    """Delete the namespace's queues and exchanges over a connection of its own
    (the test's connection may be broken or closed by then)."""
    connection = await connect(amqp_url, name=f"gongji-cleanup:{topology.namespace}")
    try:
        channel = connection.channel(publisher_confirms=False)
        await channel.initialize()
        await delete_namespace(channel, topology, sorted(topology.addresses))
        await channel.close()
    finally:
        await connection.close()


async def queue_depth(connection: AbstractConnection, queue_name: str) -> int:
    """How many messages are ready in a queue (unacked ones are not counted)."""
    channel = connection.channel(publisher_confirms=False)
    await channel.initialize()
    try:
        queue = await channel.declare_queue(queue_name, passive=True)
        count = queue.declaration_result.message_count
        return int(count or 0)
    finally:
        await channel.close()


async def collect(
    inbox: Inbox,
    count: int,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - returns what arrived instead of raising
) -> list[Delivery]:
    """Gather deliveries until ``count`` arrived or ``timeout`` seconds passed."""
    deliveries: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(deliveries) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        deliveries += await inbox.next_batch(count - len(deliveries), timeout=remaining)
    return deliveries


async def dead_letter_messages(
    connection: AbstractConnection,
    topology: Topology,
    *,
    expect: int = 0,
    timeout: float = 5.0,  # noqa: ASYNC109 - bounds the wait for ``expect`` messages
) -> list[bytes]:
    """Drain the dead-letter queue and return the bodies.

    Dead-lettering is asynchronous, so with ``expect`` > 0 keep draining until that
    many arrived or ``timeout`` seconds passed (then return what there is).
    """
    bodies: list[bytes] = []
    channel = connection.channel(publisher_confirms=False)
    await channel.initialize()
    try:
        queue = await channel.get_queue(topology.dead_letter_queue, ensure=False)
        deadline = time.monotonic() + timeout
        while True:
            message = await queue.get(no_ack=True, fail=False, timeout=timeout)
            if message is not None:
                bodies.append(message.body)
                continue
            if len(bodies) >= expect or time.monotonic() >= deadline:
                return bodies
            await asyncio.sleep(0.05)
    finally:
        await channel.close()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 whose connections a test can cut, to simulate a
    network failure between one client and the broker without touching anyone else."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Forward to ``upstream_host:upstream_port``; call ``start`` next."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @classmethod
    async def for_url(cls, amqp_url: str) -> TcpProxy:
        """Start a proxy in front of the broker of ``amqp_url``."""
        url = URL(amqp_url)
        proxy = cls(url.host or "127.0.0.1", url.port or 5672)
        await proxy.start()
        return proxy

    def url(self, amqp_url: str) -> str:
        """``amqp_url`` rewritten to go through this proxy."""
        return str(URL(amqp_url).with_host("127.0.0.1").with_port(self.port))

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._forward(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.transport.abort()
            return
        link = (writer, upstream_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer),
                self._pipe(upstream_reader, writer),
            )
        finally:
            self._links.discard(link)
            writer.transport.abort()
            upstream_writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Abort both directions as soon as one ends: a half-open AMQP link is useless.
            writer.transport.abort()

    def disconnect(self) -> int:
        """Abort every proxied connection (both sides, no goodbye); return how many."""
        links = list(self._links)
        for client_side, broker_side in links:
            client_side.transport.abort()
            broker_side.transport.abort()
        return len(links)

    async def close(self) -> None:
        """Stop listening and drop every proxied connection."""
        if self._server is not None:
            self._server.close()
        self.disconnect()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


__all__ = [
    "RABBITMQ_IMAGE",
    "BrokerUnavailable",
    "TcpProxy",
    "TrackedTopology",
    "cleanup_namespace",
    "collect",
    "dead_letter_messages",
    "queue_depth",
    "resolve_amqp_url",
    "unique_namespace",
]


def close_connection_by_name(
    connection_name: str, reason: str = "gongji test: forced drop"
) -> None:
    """Have a local broker close (CONNECTION_FORCED) the one connection with this name,
    as a broker restart or a network fault would; needs ``rabbitmqctl``."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    marker = f'{{"connection_name","{connection_name}"}}'
    pids = [line.split("\t")[0] for line in listing.stdout.splitlines() if marker in line]
    assert len(pids) == 1, f"expected one connection named {connection_name!r}, found {pids}"
    subprocess.run(
        ["rabbitmqctl", "-q", "close_connection", pids[0], reason],
        capture_output=True,
        timeout=30,
        check=True,
    )


ALL_TEST_REGIONS = ("110000", "310000", "420100", "440100", "510100", "530100", "650100")
"""Region codes the broker tests run services for (each gets a broker user)."""


def test_participants(
    regions: Sequence[str] = ALL_TEST_REGIONS, clients: Sequence[str] = ()
) -> list[Participant]:
    """The clearinghouse, the regions, and clients acting as operators (and
    ``InProcessCluster.OPERATOR``)."""
    from gongji.inprocess import InProcessCluster

    return [
        HUB,
        InProcessCluster.OPERATOR,
        *(region(code) for code in regions),
        *(admin(name) for name in clients),
    ]


class PrivateBroker:
    """A RabbitMQ node of a test's own (own ports, data and Erlang cookie), for what the
    shared broker must not undergo, such as a restart. Needs the rabbitmq-server package;
    stopped (by its own process group) on ``stop``."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gongji-private-rabbitmq-"))
        self.port = _free_port()
        self.dist_port = _free_port()
        self.nodename = f"gongji-private-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def rabbitmqctl(self) -> str:
        """The command that administers this node (for ``GONGJI_RABBITMQCTL``)."""
        # The real script (not Debian's su wrapper), which reads the cookie from HOME.
        return f"env HOME={self.home} /usr/lib/rabbitmq/bin/rabbitmqctl -n {self.nodename}"

    def start(self, timeout_s: float = 90.0) -> None:
        server = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script, not Debian's wrapper
        if not Path(server).exists():
            raise BrokerUnavailable(f"no {server}: apt-get install rabbitmq-server")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.home / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        log = (self.home / "rabbitmq.log").open("wb")
        self.process = subprocess.Popen(
            [server],
            cwd=self.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            text = (self.home / "rabbitmq.log").read_text(errors="replace")
            if "Server startup complete" in text:
                return
            time.sleep(0.5)
        tail = (self.home / "rabbitmq.log").read_text(errors="replace")[-300:]
        self.stop()
        raise BrokerUnavailable(
            f"the private RabbitMQ node did not start in {timeout_s:.0f} s: {tail}"
        )

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
