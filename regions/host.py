"""Several pooling regions in one process: one broker connection, one event loop.

Each hosted region is a whole ``RegionService``: its own SQLite file, core, policy,
identity and queue, and its own shell with its own channels. Only the connection and the
event loop are shared, which is what a province's platform is (it serves its pooling
regions), and what 146 regions need to fit on a small machine: an OS process and a
connection per region cost more than the regions' own work.

The connection's broker user is the province host's (``<namespace>.province.<code>``),
which speaks for exactly the regions of its province (``Participant.speaks_for``): the
broker's permissions confine it to their queues and the engine refuses its answers for
any other region. One region per process is the same with a single code.

With province mailboxes (``broker.topology.MAILBOXES_ENV``) the host also consumes its
province's mailbox, on which the clearinghouse sends one envelope for all the province's
regions rather than one per region: a shell of its own whose engine applies each
operation to the core of the region it names, in one transaction over their databases
(``storage.sqlite.Databases``), and runs their timers. Other clients may still send to
each region's own queue, whose shell then only consumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from aio_pika.abc import AbstractRobustConnection

from broker.engine import Core
from broker.shell import ServiceShell
from broker.topology import Topology
from contracts.effects import AtRegion, Effects
from contracts.identifiers import check_region_code, mailbox_address, province_of
from contracts.operations import Operation
from contracts.participants import Participant, Role
from regions.service import RegionService
from storage.sqlite import Databases, Synchronous

IDLE_TICK_S = 3600.0
"""A hosted region's own shell with a mailbox beside it: the mailbox runs its timers."""


class HostError(ValueError):
    """The regions asked for cannot be hosted together, or not by this broker user."""


def check_hosted(codes: Sequence[str], user: Participant | None = None) -> list[str]:
    """``codes`` if one process may host them: at least one, none twice, all of one
    province, and (given the connection's participant) each one it speaks for."""
    codes = [check_region_code(code) for code in codes]
    if not codes:
        raise HostError("no region to host")
    if len(set(codes)) != len(codes):
        raise HostError(f"a region code is listed twice: {', '.join(codes)}")
    provinces = sorted({province_of(code) for code in codes})
    if len(provinces) > 1:
        raise HostError(
            f"regions of {len(provinces)} provinces ({', '.join(provinces)}): one process "
            "hosts the regions of one province (its broker user speaks for that province)"
        )
    if user is not None:
        foreign = [code for code in codes if not user.speaks_for(code)]
        if foreign:
            hint = ""
            if user.role is Role.REGION and len(codes) > 1:
                hint = f"; several regions connect as the province host, {provinces[0]}"
            raise HostError(
                f"broker user of {user} does not speak for region {', '.join(foreign)}{hint}"
            )
    return codes


class _Joining:
    """A hosted region's core as the mailbox's engine sees it: its database joins the
    batch's transaction before the core touches it."""

    def __init__(self, core: Core, databases: Databases, code: str) -> None:
        self.core, self.databases, self.code = core, databases, code

    def handle(self, op: Operation, now_ms: int) -> Effects:
        self.databases.join(self.code)
        return self._attributed(self.core.handle(op, now_ms))

    def tick(self, now_ms: int) -> Effects:
        self.databases.join(self.code)
        return self._attributed(self.core.tick(now_ms))

    def _attributed(self, effects: Effects) -> Effects:
        if not effects.events:
            return effects
        code = self.code
        return Effects(effects.outgoing, [AtRegion(code, event) for event in effects.events])


def mailbox_cores(cores: Mapping[str, Core], databases: Databases) -> dict[str, Core]:
    """Region code -> core for a mailbox's engine (``StepEngine(hosted=...)``), each
    joining its region's database (of ``databases``, by code) to the transaction."""
    return {code: _Joining(core, databases, code) for code, core in cores.items()}


class MailboxCore:
    """The mailbox engine's own core: every operation goes to a hosted region's core
    (``StepEngine(hosted=...)``); a tick runs every hosted region's timers, in the step
    like any delivery, so a busy host pays no transaction of its own for them."""

    def __init__(self, hosted: Mapping[str, Core]) -> None:
        self.hosted = dict(hosted)

    def handle(self, op: Operation, now_ms: int) -> Effects:
        raise AssertionError("a mailbox applies operations to the regions they name")

    def tick(self, now_ms: int) -> Effects:
        return Effects.join([core.tick(now_ms) for core in self.hosted.values()])


class RegionHost:
    """Runs the services of ``codes`` on one connection until stopped."""

    def __init__(
        self,
        codes: Sequence[str],
        *,
        data_dir: Path,
        connection: AbstractRobustConnection,
        topology: Topology,
        synchronous: Synchronous = "FULL",
        mailbox: bool = False,
    ) -> None:
        """``mailbox``: consume the province's mailbox too (see the module docstring)."""
        self.codes = check_hosted(codes)
        self.regions: list[RegionService] = []
        try:
            for code in self.codes:
                self.regions.append(
                    RegionService(
                        code,
                        data_dir=data_dir,
                        connection=connection,
                        topology=topology,
                        synchronous=synchronous,
                        tick_interval_s=IDLE_TICK_S if mailbox else None,
                    )
                )
        except BaseException:
            for service in self.regions:
                service.store.close()
            raise
        self.mailbox: ServiceShell | None = None
        if mailbox:
            province = province_of(self.codes[0])
            databases = Databases({service.code: service.store.db for service in self.regions})
            hosted = mailbox_cores(
                {service.code: service.core for service in self.regions}, databases
            )
            self.mailbox = ServiceShell(
                service=f"province-{province}",
                address=mailbox_address(province),
                core=MailboxCore(hosted),
                db=databases,
                connection=connection,
                topology=topology,
                hosted=hosted,
            )

    @property
    def shells(self) -> list[ServiceShell]:
        """The regions' shells, and the mailbox's if it has one."""
        shells = [service.shell for service in self.regions]
        return shells if self.mailbox is None else [*shells, self.mailbox]

    @property
    def started(self) -> bool:
        """Whether every hosted region consumes its queue (and the mailbox its own)."""
        return all(shell.ready.is_set() for shell in self.shells)

    async def wait_started(self) -> None:
        """Return once every hosted region consumes its queue (and the mailbox its own)."""
        await asyncio.gather(*(shell.ready.wait() for shell in self.shells))

    async def run(self, stop: asyncio.Event) -> None:
        """Run every region until ``stop``. If one region fails, the others stop too and
        its error is raised: the process exits and is restarted whole, as a process of
        one region would be (unacked deliveries go back to their queues)."""
        inner, inner_mailbox = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(service.run(inner)) for service in self.regions]
        mailbox = []
        if self.mailbox is not None:
            mailbox.append(loop.create_task(self.mailbox.run(inner_mailbox)))
        stopped = loop.create_task(stop.wait())
        try:
            await asyncio.wait([*tasks, *mailbox, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The mailbox first: it writes to the regions' stores, which they close.
            inner_mailbox.set()
            results = await asyncio.gather(*mailbox, return_exceptions=True)
            inner.set()
            results += await asyncio.gather(*tasks, return_exceptions=True)
            stopped.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopped
        for result in results:
            if isinstance(result, BaseException):
                raise result
