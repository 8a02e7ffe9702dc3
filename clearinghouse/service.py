"""The clearinghouse service: the national router's coordinator, store and queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aio_pika.abc import AbstractRobustConnection

from broker.shell import ServiceShell
from broker.topology import Topology
from clearinghouse.coordinator import CoordinatorSettings
from clearinghouse.core import ClearinghouseCore
from clearinghouse.settlement import SettlementRule
from clearinghouse.store import ClearinghouseStore
from contracts.identifiers import CLEARINGHOUSE, region_address
from storage.sqlite import Synchronous


def clearinghouse_database(data_dir: Path) -> Path:
    return data_dir / "clearinghouse.sqlite"


class ClearinghouseService:
    """The national platform (国家医保服务平台): registry, directory and coordinator."""

    def __init__(
        self,
        *,
        data_dir: Path,
        connection: AbstractRobustConnection,
        topology: Topology,
        settings: CoordinatorSettings | None = None,
        synchronous: Synchronous = "FULL",
        rule: SettlementRule | None = None,
    ) -> None:
        self.store = ClearinghouseStore.open(
            clearinghouse_database(data_dir), synchronous=synchronous
        )
        self.core = ClearinghouseCore(self.store, settings, rule=rule)
        self.shell = ServiceShell(
            service="clearinghouse",
            address=CLEARINGHOUSE,
            core=self.core,
            db=self.store.db,
            connection=connection,
            topology=topology,
            # After a restart, re-send the current step of everything unfinished.
            on_start=self.core.resume,
        )

    @property
    def started(self) -> bool:
        """Whether it consumes its queue (set up and resumed)."""
        return self.shell.ready.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.shell.declare([region_address(r.code) for r in self.store.regions()])
            await self.shell.run(stop)
        finally:
            self.store.close()
