"""A whole cluster (clearinghouse and regions) as tasks of one event loop, on RabbitMQ.

The demo and the integration tests run the real services this way; ``compose.yaml``
and ``gongji cluster`` run the same services as separate processes. Each service
connects as its own broker user (``credentials``), as it does in those.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from broker.connection import connect
from broker.topology import Topology, delete_namespace, ensure_topology
from broker.users import Credentials, delete_users, provision
from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.service import ClearinghouseService, clearinghouse_database
from clearinghouse.settlement import SettlementRule
from clearinghouse.store import ClearinghouseStore
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.participants import HUB, Participant, admin, region
from gongji.client import BillClient
from regions.books import Books
from regions.service import RegionService, region_database
from regions.store import RegionStore
from storage.sqlite import Synchronous


class InProcessCluster:
    """Start, stop and restart services; open their stores for inspection."""

    OPERATOR = admin("cluster")
    """The participant of ``connection`` (queue clean-up, the operator's own use)."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        data_dir: Path,
        *,
        regions: Iterable[str],
        clients: Iterable[str] = (),
        settings: CoordinatorSettings | None = None,
        synchronous: Synchronous = "FULL",
        credentials: Credentials | None = None,
        rule: SettlementRule | None = None,
    ) -> None:
        """``regions`` may run and ``clients`` may connect (as operators); without
        ``credentials``, their broker users are created on entry and removed on exit."""
        self.base_url = amqp_url
        self.participants = [
            HUB,
            self.OPERATOR,
            *map(region, regions),
            *map(admin, clients),
        ]
        if credentials is not None and credentials.namespace != topology.namespace:
            raise ValueError("the credentials are for another namespace")
        self._owns_users = credentials is None
        self.credentials = credentials
        self.amqp_url = ""
        """The operator's URL (set on entry)."""
        self.topology = topology
        self.data_dir = data_dir
        self.settings = settings
        self.rule = rule
        """How the clearinghouse keeps the regions' advances (None: no advance)."""
        self.synchronous = synchronous
        self.connection: AbstractRobustConnection | None = None
        self._running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._connections: dict[Participant, AbstractRobustConnection] = {}

    async def __aenter__(self) -> InProcessCluster:
        if self.credentials is None:
            # Reach the broker first, so an unreachable one is said as such (and no
            # users are made for nothing).
            probe = await connect(self.base_url, name=f"{self.topology.namespace}-probe")
            await probe.close()
            self.credentials = await asyncio.to_thread(
                provision, self.base_url, self.topology.namespace, self.participants
            )
        self.amqp_url = self.credentials.url(self.OPERATOR)
        self.connection = await connect(self.amqp_url, name=f"{self.topology.namespace}-cluster")
        # The operator declares the namespace's exchanges and dead-letter queue, as
        # `gongji cluster up` does: the services may not.
        await ensure_topology(self.connection, self.topology)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_all()
            for connection in self._connections.values():
                await connection.close()
            self._connections.clear()
            if self.connection is not None:
                await self.connection.close()
        finally:
            # The users it made go with it, however the services stopped.
            if self._owns_users and self.credentials is not None:
                await asyncio.to_thread(delete_users, self.credentials.passwords())

    async def open_client(self, name: str) -> BillClient:
        """A client that may also act as an operator (register, enroll, close windows),
        on a connection of its own as broker user ``admin.<name>``."""
        connection = await self.connection_of(admin(name))
        return await BillClient.open(connection, self.topology, name)

    async def connection_of(self, participant: Participant) -> AbstractRobustConnection:
        """The connection a participant's service uses (its own broker user), opened once."""
        assert self.credentials is not None, "use 'async with InProcessCluster(...)'"
        connection = self._connections.get(participant)
        if connection is None:
            connection = await connect(
                self.credentials.url(participant),
                name=f"{self.topology.namespace}-{participant}",
            )
            self._connections[participant] = connection
        return connection

    def _conn(self) -> AbstractRobustConnection:
        assert self.connection is not None, "use 'async with InProcessCluster(...)'"
        return self.connection

    async def start_clearinghouse(self) -> ClearinghouseService:
        service = ClearinghouseService(
            data_dir=self.data_dir,
            connection=await self.connection_of(HUB),
            topology=self.topology,
            settings=self.settings,
            synchronous=self.synchronous,
            rule=self.rule,
        )
        await self._start(CLEARINGHOUSE, service.run, service.shell.ready)
        return service

    async def start_region(self, code: str) -> RegionService:
        service = RegionService(
            code,
            data_dir=self.data_dir,
            connection=await self.connection_of(region(code)),
            topology=self.topology,
            synchronous=self.synchronous,
        )
        await self._start(region_address(code), service.run, service.shell.ready)
        return service

    async def start(self, regions: Iterable[str]) -> None:
        await self.start_clearinghouse()
        for code in regions:
            await self.start_region(code)

    async def _start(
        self,
        name: str,
        run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
        ready: asyncio.Event,
    ) -> None:
        if name in self._running:
            raise RuntimeError(f"{name} is running already")
        stop = asyncio.Event()
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(run(stop))
        self._running[name] = (stop, task)
        waiter = asyncio.get_running_loop().create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            del self._running[name]
            task.result()  # raises what made it stop
            raise RuntimeError(f"{name} stopped while starting")

    async def stop(self, name: str) -> None:
        """Stop one service cleanly (its unacknowledged messages go back to its queue)."""
        stop, task = self._running.pop(name)
        stop.set()
        await task

    async def kill(self, name: str) -> None:
        """Stop one service abruptly: cancel its task mid-step, as a crash would."""
        _, task = self._running.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for name in list(self._running):
            await self.stop(name)

    def region_books(self, codes: Iterable[str]) -> dict[str, Books]:
        """Open each region's SQLite file for reading (WAL allows it while running)."""
        return {
            code: RegionStore.open(region_database(self.data_dir, code), cached=False).books
            for code in codes
        }

    def region_store(self, code: str) -> RegionStore:
        return RegionStore.open(region_database(self.data_dir, code), cached=False)

    def clearinghouse_store(self) -> ClearinghouseStore:
        return ClearinghouseStore.open(clearinghouse_database(self.data_dir), cached=False)

    async def delete_queues(self, regions: Iterable[str], clients: Iterable[str] = ()) -> None:
        channel = await self._conn().channel()
        addresses = [CLEARINGHOUSE, *map(region_address, regions), *clients]
        await delete_namespace(channel, self.topology, addresses)
        await channel.close()
