"""Cores with a planted bug, to show that the simulation's invariants catch real mistakes.

Each is the real core with one small, plausible error. ``gongji sim --plant NAME`` runs
one of them in place of the real core; the tests assert the checker reports it. They
wrap ``handle`` or ``resume`` and use only the stores' public methods, so they keep
working while the cores grow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clearinghouse.coordinator import TransferCoordinator
from clearinghouse.store import TransferState
from contracts.effects import Outgoing
from contracts.operations import Commit, Credit, Operation
from regions.core import RegionCore
from regions.store import BILLS_PAID, HoldState, RegionStore, interregion_account, person_account

RegionFactory = Callable[[str, RegionStore], RegionCore]


class DoublePostingRegion(RegionCore):
    """Posts a hold again when its commit is redelivered (forgets it was posted)."""

    def handle(self, op: Operation, now_ms: int) -> list[Outgoing]:
        if isinstance(op, Commit):
            hold = self.store.hold(op.transfer_id)
            if hold is not None and hold.state is HoldState.POSTED:
                assert hold.payer is not None and hold.payee_region is not None
                self.books.post(
                    hold.transfer_id,
                    person_account(hold.payer),
                    interregion_account(hold.payee_region),
                    hold.held_fen,
                    now_ms,
                )
        return super().handle(op, now_ms)


class DoubleCreditingRegion(RegionCore):
    """Credits a bill again when its credit is redelivered."""

    def handle(self, op: Operation, now_ms: int) -> list[Outgoing]:
        if isinstance(op, Credit) and self.store.credit_amount(op.transfer_id) is not None:
            account = interregion_account(op.payer_region)
            self.books.transfer(op.transfer_id, account, BILLS_PAID, op.amount_fen, now_ms)
        return super().handle(op, now_ms)


class AbortOnRestartCoordinator(TransferCoordinator):
    """After a restart, forgets it decided to commit and aborts those transfers instead."""

    def resume(self, now_ms: int) -> list[Outgoing]:
        out: list[Outgoing] = []
        for t in self.store.unfinished():
            if t.state is TransferState.COMMITTING:
                t.state = TransferState.RESERVING  # as if it never decided
                out += self._time_out(t, now_ms)
        return out + super().resume(now_ms)


class ForgetfulCoordinator(TransferCoordinator):
    """After a restart, re-sends nothing and drops the timers of unfinished transfers."""

    def resume(self, now_ms: int) -> list[Outgoing]:
        for t in self.store.unfinished():
            t.next_action_ms = None
            self.store.save(t)
        return []


@dataclass(frozen=True, slots=True)
class Plant:
    """A planted bug: which core it replaces, and how."""

    name: str
    what: str
    region: RegionFactory | None = None
    coordinator: type[TransferCoordinator] | None = None


PLANTS: dict[str, Plant] = {
    p.name: p
    for p in (
        Plant(
            "double-post",
            "a region posts a hold again on a redelivered commit",
            region=DoublePostingRegion,
        ),
        Plant(
            "double-credit",
            "a region credits a bill again on a redelivered credit",
            region=DoubleCreditingRegion,
        ),
        Plant(
            "abort-on-restart",
            "the clearinghouse aborts decided commits after a restart",
            coordinator=AbortOnRestartCoordinator,
        ),
        Plant(
            "forget-on-restart",
            "the clearinghouse drops its timers after a restart",
            coordinator=ForgetfulCoordinator,
        ),
    )
}
