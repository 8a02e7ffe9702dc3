"""The region service: one pooling region's core, store and queue, run on RabbitMQ."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aio_pika.abc import AbstractRobustConnection

from broker.shell import ServiceShell
from broker.topology import Topology
from contracts.identifiers import check_region_code, region_address
from regions.core import RegionCore
from regions.store import RegionStore
from storage.sqlite import Synchronous


def region_database(data_dir: Path, code: str) -> Path:
    return data_dir / f"region-{code}.sqlite"


class RegionService:
    """A pooling region (统筹区) that owns its insured persons and their accounts."""

    def __init__(
        self,
        code: str,
        *,
        data_dir: Path,
        connection: AbstractRobustConnection,
        topology: Topology,
        synchronous: Synchronous = "FULL",
        tick_interval_s: float | None = None,
    ) -> None:
        """``tick_interval_s``: how often its shell runs its timers (default: the shell's
        tuning; a province host with a mailbox runs them there instead)."""
        self.code = check_region_code(code)
        self.store = RegionStore.open(region_database(data_dir, code), synchronous=synchronous)
        self.core = RegionCore(code, self.store)
        self.shell = ServiceShell(
            service=f"region-{code}",
            address=region_address(code),
            core=self.core,
            db=self.store.db,
            connection=connection,
            topology=topology,
            tick_interval_s=tick_interval_s,
        )

    @property
    def started(self) -> bool:
        """Whether it consumes its queue (set up and resumed)."""
        return self.shell.ready.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.shell.run(stop)
        finally:
            self.store.close()
