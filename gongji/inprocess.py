"""A whole cluster (clearinghouse and regions) as tasks of one event loop, on RabbitMQ.

The demo and the integration tests run the real services this way; ``compose.yaml``
and ``gongji cluster`` run the same services as separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from broker.connection import connect
from broker.topology import Topology, delete_namespace
from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.service import ClearinghouseService, clearinghouse_database
from clearinghouse.store import ClearinghouseStore
from contracts.identifiers import CLEARINGHOUSE, region_address
from regions.books import Books
from regions.service import RegionService, region_database
from regions.store import RegionStore
from storage.sqlite import Synchronous


class InProcessCluster:
    """Start, stop and restart services; open their stores for inspection."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        data_dir: Path,
        *,
        settings: CoordinatorSettings | None = None,
        synchronous: Synchronous = "FULL",
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.data_dir = data_dir
        self.settings = settings
        self.synchronous = synchronous
        self.connection: AbstractRobustConnection | None = None
        self._running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    async def __aenter__(self) -> InProcessCluster:
        self.connection = await connect(self.amqp_url, name=f"{self.topology.namespace}-cluster")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()
        if self.connection is not None:
            await self.connection.close()

    def _conn(self) -> AbstractRobustConnection:
        assert self.connection is not None, "use 'async with InProcessCluster(...)'"
        return self.connection

    async def start_clearinghouse(self) -> ClearinghouseService:
        service = ClearinghouseService(
            data_dir=self.data_dir,
            connection=self._conn(),
            topology=self.topology,
            settings=self.settings,
            synchronous=self.synchronous,
        )
        await self._start(CLEARINGHOUSE, service.run, service.shell.ready)
        return service

    async def start_region(self, code: str) -> RegionService:
        service = RegionService(
            code,
            data_dir=self.data_dir,
            connection=self._conn(),
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
