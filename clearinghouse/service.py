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
from contracts.identifiers import CLEARINGHOUSE, mailbox_of, mailbox_route, region_address
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
        mailboxes: bool = False,
    ) -> None:
        """``mailboxes``: send each region's operations to its province host's mailbox
        (``broker.topology.MAILBOXES_ENV``), one envelope per province."""
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
            mailbox=mailbox_route if mailboxes else None,
        )
        self.mailboxes = mailboxes

    @property
    def started(self) -> bool:
        """Whether it consumes its queue (set up and resumed)."""
        return self.shell.ready.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            addresses = [region_address(r.code) for r in self.store.regions()]
            if self.mailboxes:
                addresses += sorted({mailbox_of(address) for address in addresses})
            await self.shell.declare(addresses)
            await self.shell.run(stop)
        finally:
            self.store.close()
