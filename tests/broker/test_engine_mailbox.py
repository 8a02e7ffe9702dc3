"""Province mailboxes in the step engine (sans-I/O): the clearinghouse sends a province
one envelope naming each operation's region, and the province host's engine applies each
operation to that region's core, in one transaction over the regions' databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from broker.engine import MISROUTED, Ack, DeadLetter, Inbound, Requeue, StepEngine
from contracts.effects import Anomaly, AnyEvent, AtRegion, Effects, Outgoing, RegionRegistered
from contracts.identifiers import CLEARINGHOUSE, mailbox_route, region_address
from contracts.operations import Commit, Operation
from regions.host import MailboxCore, mailbox_cores
from storage.sqlite import Database, Databases


class RegionOf:
    """A region's stand-in core: records each Commit in its own database and answers
    the clearinghouse; a Commit whose id starts with ``bad`` raises."""

    def __init__(self, code: str, db: Database) -> None:
        self.code = code
        self.db = db
        db.executescript("CREATE TABLE IF NOT EXISTS seen (id TEXT)")

    events: list[AnyEvent] = []
    """What each call reports (none unless a test sets it)."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
        assert isinstance(op, Commit)
        self.db.connection.execute("INSERT INTO seen VALUES (?)", (op.transfer_id,))
        if op.transfer_id.startswith("bad"):
            raise RuntimeError("a core bug")
        answer = Outgoing(CLEARINGHOUSE, Commit(f"{self.code}:{op.transfer_id}"))
        return Effects([answer], list(self.events))

    def tick(self, now_ms: int) -> Effects:
        self.db.connection.execute("INSERT INTO seen VALUES (?)", (f"tick-{now_ms}",))
        return Effects([Outgoing(CLEARINGHOUSE, Commit(f"{self.code}:tick"))])

    def seen(self) -> list[str]:
        return [r[0] for r in self.db.connection.execute("SELECT id FROM seen ORDER BY rowid")]


class Hub:
    """The clearinghouse's stand-in: answers each Commit ``<code>-<id>`` to region
    ``<code>``; ``register-<code>`` registers a region."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
        assert isinstance(op, Commit)
        name = op.transfer_id
        if name.startswith("register-"):
            code = name.removeprefix("register-")
            return Effects([], [RegionRegistered(code)])
        code = name.split("-")[0]
        return Effects([Outgoing(region_address(code), op), Outgoing("client.x", op)])

    def tick(self, now_ms: int) -> Effects:
        return Effects()


def hub_engine() -> StepEngine[str]:
    db = Database(":memory:")
    return StepEngine(Hub(), db, mailbox=mailbox_route)


def province_engine(tmp_path: Path) -> tuple[StepEngine[str], dict[str, RegionOf]]:
    # Files, not :memory:, as in a host: each region has a database of its own.
    regions = {code: RegionOf(code, Database(tmp_path / f"{code}.sqlite")) for code in CODES}
    databases = Databases({code: core.db for code, core in regions.items()})
    hosted = mailbox_cores(regions, databases)
    engine: StepEngine[str] = StepEngine(MailboxCore(hosted), databases, hosted=hosted)
    return engine, regions


CODES = ("420100", "420500")


def routed(tag: str, *pairs: tuple[str, str]) -> Inbound[str]:
    return Inbound(
        tag, f"msg-{tag}", [Commit(i) for _, i in pairs], destinations=[c for c, _ in pairs]
    )


def test_the_hub_sends_one_envelope_per_province_naming_each_operations_region() -> None:
    engine = hub_engine()
    batch = [
        Inbound("t1", "m1", [Commit("420100-a"), Commit("310000-b"), Commit("420500-c")]),
    ]
    step = engine.step(batch, now_ms=1)
    assert step.sends == {
        "province.420000": [Commit("420100-a"), Commit("420500-c")],
        "province.310000": [Commit("310000-b")],
        "client.x": [Commit("420100-a"), Commit("310000-b"), Commit("420500-c")],
    }
    assert step.routes == {"province.420000": ["420100", "420500"], "province.310000": ["310000"]}


def test_a_registered_regions_queue_and_its_provinces_mailbox_are_declared() -> None:
    engine = hub_engine()
    step = engine.step([Inbound("t", "m", [Commit("register-420100")])], now_ms=1)
    # Clients still send to the region's own queue; the hub sends to the mailbox.
    assert step.declare == ["region.420100", "province.420000"]


def test_a_mailbox_applies_each_operation_to_the_region_it_names(tmp_path: Path) -> None:
    engine, regions = province_engine(tmp_path)
    step = engine.step([routed("t1", ("420100", "a"), ("420500", "b"), ("420100", "c"))], now_ms=1)
    assert regions["420100"].seen() == ["a", "c"]
    assert regions["420500"].seen() == ["b"]
    # The regions' answers to the clearinghouse share one envelope.
    assert step.sends == {
        CLEARINGHOUSE: [Commit("420100:a"), Commit("420500:b"), Commit("420100:c")]
    }
    assert engine.published(step, True) == [Ack(("t1",))]


def test_a_mailbox_refuses_a_region_it_does_not_host_and_an_envelope_naming_none(
    tmp_path: Path,
) -> None:
    engine, regions = province_engine(tmp_path)
    foreign = routed("foreign", ("420100", "a"), ("440100", "b"))
    unnamed = Inbound("unnamed", "m-unnamed", [Commit("c")])
    step = engine.step([foreign, unnamed, routed("ok", ("420500", "d"))], now_ms=1)
    assert step.settle_now == [
        DeadLetter("foreign", MISROUTED),
        DeadLetter("unnamed", MISROUTED),
    ]
    assert [reason for _, reason in step.refused] == [MISROUTED, MISROUTED]
    # Nothing of the refused deliveries was applied, not even their hosted regions' part.
    assert regions["420100"].seen() == []
    assert regions["420500"].seen() == ["d"]


def test_a_region_queue_refuses_an_envelope_that_names_regions() -> None:
    db = Database(":memory:")
    engine: StepEngine[str] = StepEngine(RegionOf("420100", db), db)
    step = engine.step([routed("t", ("420100", "a"))], now_ms=1)
    assert step.settle_now == [DeadLetter("t", MISROUTED)]


def test_a_batch_joins_only_the_databases_it_touches(tmp_path: Path) -> None:
    engine, regions = province_engine(tmp_path)
    touched: list[str] = []

    def tracer(code: str) -> Callable[[str], None]:
        def trace(sql: str) -> None:
            if sql.startswith("BEGIN"):
                touched.append(code)

        return trace

    for code, core in regions.items():
        core.db.connection.set_trace_callback(tracer(code))
    engine.step([routed("t", ("420500", "a"))], now_ms=1)
    assert touched == ["420500"]
    assert regions["420500"].seen() == ["a"]


def test_a_mailbox_tick_runs_every_hosted_regions_timers_in_its_step(tmp_path: Path) -> None:
    engine, regions = province_engine(tmp_path)
    step = engine.step([routed("t", ("420100", "a"))], now_ms=7, tick=True)
    assert regions["420100"].seen() == ["a", "tick-7"]
    assert regions["420500"].seen() == ["tick-7"]
    assert step.sends == {
        CLEARINGHOUSE: [Commit("420100:a"), Commit("420100:tick"), Commit("420500:tick")]
    }


def test_a_mailbox_reports_each_event_as_its_regions(tmp_path: Path) -> None:
    """Metrics and logs of a hosted region keep its own ``service`` label."""
    engine, regions = province_engine(tmp_path)
    anomaly = Anomaly("t-1", "seen")
    regions["420500"].events = [anomaly]
    step = engine.step([routed("t", ("420100", "a"), ("420500", "b"))], now_ms=1)
    assert step.events == [AtRegion("420500", anomaly)]


def test_a_failing_operation_rolls_back_its_delivery_in_every_region(tmp_path: Path) -> None:
    engine, regions = province_engine(tmp_path)
    bad = routed("bad", ("420100", "x"), ("420500", "bad"))
    good = routed("good", ("420100", "y"), ("420500", "z"))
    step = engine.step([bad, good], now_ms=1)
    # The batch rolled back in both databases and was applied again one by one: the
    # failing delivery left nothing behind in either region, the other committed in both.
    assert regions["420100"].seen() == ["y"]
    assert regions["420500"].seen() == ["z"]
    assert step.settle_now == [Requeue(("bad",))]
    assert [d.token for d in step.done] == ["good"]
