"""Cores and step engines with a planted bug, to show that the simulation's invariants
catch real mistakes.

Each is the real core, or the real step engine (``broker.engine``, which the RabbitMQ
shell runs too), with one small, plausible error. ``gongji sim --plant NAME`` runs
one of them in place of the real core; the tests assert the checker reports it. They
wrap ``handle`` or ``resume`` and use only the stores' public methods, so they keep
working while the cores grow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from broker.engine import Ack, Inbound, Settlement, Step, StepEngine
from clearinghouse.coordinator import TransferCoordinator
from clearinghouse.store import TransferState
from contracts.effects import Effects
from contracts.operations import Commit, Credit, Operation, RequestAid, RequestTransfer, Settle
from contracts.settlement_states import SettlementState
from regions.core import RegionCore
from regions.settling import top_up_transfer_id
from regions.store import (
    BILLS_PAID,
    SETTLEMENT_ADVANCE,
    SETTLEMENT_FUND,
    HoldState,
    RegionStore,
    interregion_account,
    person_account,
)

RegionFactory = Callable[[str, RegionStore], RegionCore]
EngineFactory = Callable[..., StepEngine[Any]]


class DoublePostingRegion(RegionCore):
    """Posts a hold again when its commit is redelivered (forgets it was posted)."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
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

    def handle(self, op: Operation, now_ms: int) -> Effects:
        if isinstance(op, Credit) and self.store.credit_amount(op.transfer_id) is not None:
            account = interregion_account(op.payer_region)
            self.books.transfer(op.transfer_id, account, BILLS_PAID, op.amount_fen, now_ms)
        return super().handle(op, now_ms)


class DoubleSettlingRegion(RegionCore):
    """Books a window's settlement again when its ``Settle`` is redelivered (or re-sent by a
    close asked again): it forgets the window was booked."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
        if isinstance(op, Settle):
            record = self.store.fund_settlements.get(op.window)
            if record is not None and record.state is SettlementState.BOOKED:
                top_up = record.top_up_fen
                if top_up > 0:
                    self.books.transfer(
                        top_up_transfer_id(op.window),
                        SETTLEMENT_ADVANCE,
                        SETTLEMENT_FUND,
                        top_up,
                        now_ms,
                    )
        return super().handle(op, now_ms)


class AbortOnRestartCoordinator(TransferCoordinator):
    """After a restart, forgets it decided to commit and aborts those transfers instead."""

    def resume(self, now_ms: int) -> Effects:
        aborted: list[Effects] = []
        for t in self.store.unfinished():
            if t.state is TransferState.COMMITTING:
                t.state = TransferState.RESERVING  # as if it never decided
                aborted.append(self._time_out(t, now_ms))
        return Effects.join(aborted) + super().resume(now_ms)


class ForgetfulCoordinator(TransferCoordinator):
    """After a restart, re-sends nothing and drops the timers of unfinished transfers,
    and ignores the regions' requests for them when they ask again."""

    def resume(self, now_ms: int) -> Effects:
        for t in self.store.unfinished():
            t.next_action_ms = None
            self.store.save(t)
        return Effects()

    def _forgotten(self, transfer_id: str) -> bool:
        t = self.store.transfer(transfer_id)
        if t is None or t.next_action_ms is not None:
            return False
        return t.state not in (TransferState.COMMITTED, TransferState.ABORTED) or t.abort_pending

    def request_aid(self, op: RequestAid, now_ms: int) -> Effects:
        return Effects() if self._forgotten(op.transfer_id) else super().request_aid(op, now_ms)

    def request_transfer(self, op: RequestTransfer, now_ms: int) -> Effects:
        if self._forgotten(op.transfer_id):
            return Effects()
        return super().request_transfer(op, now_ms)


class AckOnReceiptEngine(StepEngine[Any]):
    """Acks a batch as soon as it is taken, before its transaction commits (as a
    consumer with ``no_ack`` does): a crash in the step loses the batch."""

    def _on_receipt(self, batch: Sequence[Inbound[Any]]) -> list[Settlement[Any]]:
        return [Ack(tuple(i.token for i in batch))] if batch else []


class AckFailedPublishEngine(StepEngine[Any]):
    """Acks a step whose answers could not be published, instead of requeueing it."""

    def _settle(self, step: Step[Any]) -> list[Settlement[Any]]:
        if not step.done:
            return []
        return [Ack(tuple(i.token for i in step.done))]


class UnorderedSettlingEngine(StepEngine[Any]):
    """Settles each step as soon as its own confirm comes, not in delivery order: a
    later step's multiple-ack then settles an earlier one still awaiting its confirm."""

    def _due(self) -> list[Settlement[Any]]:
        due: list[Settlement[Any]] = []
        for step in [s for s in self._awaiting if s.published_ok is not None]:
            self._awaiting.remove(step)
            due += self._settle(step)
        return due


class TrustingEngine(StepEngine[Any]):
    """Believes every sender: it never asks the permission table (as a service that
    took the envelope's own ``from`` field at its word would)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["authorize"] = None
        super().__init__(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class Plant:
    """A planted bug: which core it replaces, and how."""

    name: str
    what: str
    region: RegionFactory | None = None
    coordinator: type[TransferCoordinator] | None = None
    engine: EngineFactory | None = None


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
            "double-settle",
            "a region books a window's settlement again on a redelivered settle",
            region=DoubleSettlingRegion,
        ),
        Plant(
            "abort-on-restart",
            "the clearinghouse aborts decided commits after a restart",
            coordinator=AbortOnRestartCoordinator,
        ),
        Plant(
            "forget-on-restart",
            "the clearinghouse drops its timers after a restart and ignores repeats",
            coordinator=ForgetfulCoordinator,
        ),
        Plant(
            "ack-before-commit",
            "the step engine acks a batch when it takes it, before its transaction commits",
            engine=AckOnReceiptEngine,
        ),
        Plant(
            "ack-failed-publish",
            "the step engine acks a step whose answers could not be published",
            engine=AckFailedPublishEngine,
        ),
        Plant(
            "trust-senders",
            "the step engine applies whatever any participant sends",
            engine=TrustingEngine,
        ),
        Plant(
            "settle-out-of-order",
            "the step engine settles a later step before an earlier one",
            engine=UnorderedSettlingEngine,
        ),
    )
}
