"""The step engine on its own (sans-I/O): transactions, isolation, settling order."""

from __future__ import annotations

import pytest

from broker.engine import (
    HANDLER_FAILED,
    Ack,
    DeadLetter,
    Inbound,
    Requeue,
    SimulatedCrash,
    StepEngine,
)
from contracts.effects import Effects, Outgoing, RegionRegistered
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import Commit, Operation
from storage.sqlite import Database


class CountingCore:
    """Writes one row per Commit (so a rollback is visible) and answers it; a Commit
    whose id starts with ``bad`` raises; ``register-NNNNNN`` registers a region."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript("CREATE TABLE IF NOT EXISTS seen (id TEXT)")

    def handle(self, op: Operation, now_ms: int) -> Effects:
        assert isinstance(op, Commit)
        self.db.connection.execute("INSERT INTO seen VALUES (?)", (op.transfer_id,))
        if op.transfer_id.startswith("bad"):
            raise RuntimeError("a core bug")
        answers = [Outgoing(CLEARINGHOUSE, op), Outgoing("client.x", op)]
        if op.transfer_id.startswith("register-"):
            return Effects(answers, [RegionRegistered(op.transfer_id.removeprefix("register-"))])
        return Effects(answers)

    def tick(self, now_ms: int) -> Effects:
        return Effects([Outgoing(CLEARINGHOUSE, Commit(f"tick-{now_ms}"))])

    def seen(self) -> list[str]:
        return [r[0] for r in self.db.connection.execute("SELECT id FROM seen ORDER BY rowid")]


def make(depth: int = 2, failures: int = 3) -> tuple[StepEngine[str], CountingCore]:
    db = Database(":memory:")
    core = CountingCore(db)
    return StepEngine(core, db, pipeline_depth=depth, max_handling_failures=failures), core


def deliveries(*ids: str) -> list[Inbound[str]]:
    return [Inbound(f"tag-{i}", f"msg-{i}", [Commit(i)]) for i in ids]


def test_a_batch_is_one_transaction_and_answers_are_grouped_by_destination() -> None:
    engine, core = make()
    step = engine.step(deliveries("a", "b"), now_ms=1)
    assert [d.token for d in step.done] == ["tag-a", "tag-b"]
    assert step.sends == {
        CLEARINGHOUSE: [Commit("a"), Commit("b")],
        "client.x": [Commit("a"), Commit("b")],
    }
    assert step.operations == 2 and not step.settle_now
    assert core.seen() == ["a", "b"]


def test_a_failing_delivery_is_isolated_requeued_then_dead_lettered() -> None:
    engine, core = make(failures=3)
    first = engine.step(deliveries("a", "bad", "b"), now_ms=1)
    # The batch rolled back and was applied again one by one; only "bad" failed.
    assert [d.token for d in first.done] == ["tag-a", "tag-b"]
    assert first.settle_now == [Requeue(("tag-bad",))]
    assert core.seen() == ["a", "b"]
    second = engine.step(deliveries("bad"), now_ms=2)
    assert second.settle_now == [Requeue(("tag-bad",))]
    third = engine.step(deliveries("bad"), now_ms=3)
    assert third.settle_now == [DeadLetter("tag-bad", HANDLER_FAILED)]


def test_only_committed_work_reports_its_events() -> None:
    engine, _ = make()
    # The whole batch ran once and rolled back, then each delivery alone: the events of
    # the rolled-back attempt are not reported, those of the deliveries that committed are.
    step = engine.step(deliveries("register-420100", "bad", "register-510100"), now_ms=1)
    assert step.events == [RegionRegistered("420100"), RegionRegistered("510100")]
    assert step.declare == [region_address("420100"), region_address("510100")]

    def crash() -> None:
        raise SimulatedCrash

    crashed = engine.step(deliveries("register-310000"), now_ms=2, crash=crash)
    assert crashed.crashed and crashed.events == [] and crashed.declare == []
    # Nothing of the crashed step lingers to be reported with the next one.
    assert engine.step(deliveries("a"), now_ms=3).events == []


def test_a_crash_inside_the_transaction_rolls_back_and_settles_nothing() -> None:
    engine, core = make()

    def crash() -> None:
        raise SimulatedCrash

    step = engine.step(deliveries("a"), now_ms=1, crash=crash)
    assert step.crashed and not step.done and not step.sends and not step.settle_now
    assert core.seen() == []
    assert engine.awaiting == 0
    # A crash is not a handling failure: the message is not counted towards dead-lettering.
    again = make(failures=1)[0]
    assert again.step(deliveries("a"), now_ms=1, crash=crash).settle_now == []


def test_steps_settle_in_order_and_a_failed_publish_requeues() -> None:
    engine, _ = make(depth=3)
    one = engine.step(deliveries("a"), now_ms=1)
    two = engine.step(deliveries("b"), now_ms=2)
    three = engine.step(deliveries("c"), now_ms=3)
    assert not engine.room()
    # Later confirms come first: nothing is settled before the oldest step is.
    assert engine.published(three, ok=True) == []
    assert engine.published(two, ok=True) == []
    assert engine.published(one, ok=False) == [
        Requeue(("tag-a",)),
        Ack(("tag-b",)),
        Ack(("tag-c",)),
    ]
    assert engine.room() and engine.awaiting == 0
    with pytest.raises(ValueError, match="already"):
        engine.published(one, ok=True)


def test_a_tick_runs_in_the_step_and_a_registered_region_is_declared() -> None:
    engine, _ = make()
    step = engine.step(deliveries("register-420100"), now_ms=7, tick=True)
    assert step.declare == [region_address("420100")]
    assert Commit("tick-7") in step.sends[CLEARINGHOUSE]
    quiet = engine.step([], now_ms=8)
    assert not quiet.needs_publish and engine.awaiting == 1  # only the first awaits


def test_start_runs_in_a_transaction_before_any_delivery() -> None:
    engine, core = make()

    def resume(now_ms: int) -> Effects:
        core.db.connection.execute("INSERT INTO seen VALUES ('resumed')")
        return Effects([Outgoing(region_address("420100"), Commit("again"))])

    step = engine.start(5, resume)
    assert step.sends == {region_address("420100"): [Commit("again")]} and not step.done
    assert engine.published(step, ok=True) == []
    assert core.seen() == ["resumed"]
