"""The legs' events of the transfer table (``LEG_*``), pair by pair, through the real
coordinator: a bill at a region of care whose legs are in given states gets one answer.
(The other events' pairs: ``test_transfer_states``.)"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import ClearinghouseStore, Leg, Transfer
from clearinghouse.transfer_states import TRANSITIONS, LegState, TransferEvent, TransferState
from contracts.effects import Anomaly, Effects
from contracts.identifiers import region_address
from contracts.operations import Aborted, CommitResult, Credited, RegisterRegion, ReserveResult
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow

HENAN, GUANGZHOU, SHANGHAI = "410100", "440100", "310000"
ROLES = {
    region_address(HENAN): "insured",
    region_address(GUANGZHOU): "care",
    region_address(SHANGHAI): "copayer",
}
S, E, L = TransferState, TransferEvent, LegState
NOW = 1_000


def coordinator() -> TransferCoordinator:
    core = ClearinghouseCore(ClearinghouseStore.open(":memory:"), CoordinatorSettings())
    with core.store.db.transaction():
        for code in (HENAN, GUANGZHOU, SHANGHAI):
            core.handle(RegisterRegion(code, code, "p", True, direct_settlement=True), 0)
    return core.coordinator


@dataclass(frozen=True)
class Case:
    state: TransferState
    legs: tuple[LegState, LegState, LegState]
    """The wallet's, the own account's and the co-payer's leg."""
    given: str
    event: TransferEvent
    after: TransferState
    sends: frozenset[tuple[str, str]] = frozenset()
    legs_after: tuple[LegState, LegState, LegState] | None = None


def case(
    state: TransferState,
    legs: tuple[LegState, LegState, LegState],
    given: str,
    event: TransferEvent,
    after: TransferState,
    *sends: str,
    legs_after: tuple[LegState, LegState, LegState] | None = None,
) -> Case:
    pairs = frozenset(tuple(s.split(":")) for s in sends)
    return Case(state, legs, given, event, after, pairs, legs_after)  # type: ignore[arg-type]


CASES = [
    case(
        S.RESERVING,
        (L.ASKING, L.WAITING, L.WAITING),
        "wallet refused",
        E.LEG_ANSWERED,
        S.RESERVING,
        "insured:Reserve",
        legs_after=(L.NOT_HELD, L.ASKING, L.WAITING),
    ),
    case(
        S.RESERVING,
        (L.NOT_HELD, L.ASKING, L.WAITING),
        "wallet refused",
        E.LEG_REPEATED,
        S.RESERVING,
    ),
    case(
        S.COMMITTING,
        (L.HELD, L.NOT_HELD, L.HELD),
        "wallet posted",
        E.LEG_POSTED,
        S.COMMITTING,
        legs_after=(L.POSTED, L.NOT_HELD, L.HELD),
    ),
    case(
        S.COMMITTING, (L.POSTED, L.NOT_HELD, L.HELD), "wallet posted", E.LEG_REPEATED, S.COMMITTING
    ),
    case(
        S.CREDITING,
        (L.POSTED, L.NOT_HELD, L.POSTED),
        "wallet credited",
        E.LEG_CREDITED,
        S.CREDITING,
        legs_after=(L.CREDITED, L.NOT_HELD, L.POSTED),
    ),
    case(
        S.CREDITING,
        (L.CREDITED, L.NOT_HELD, L.POSTED),
        "wallet credited",
        E.LEG_REPEATED,
        S.CREDITING,
    ),
    case(
        S.COMMITTED,
        (L.CREDITED, L.NOT_HELD, L.CREDITED),
        "wallet credited",
        E.LEG_REPEATED,
        S.COMMITTED,
        "care:AwaySettled",
    ),
    case(
        S.ABORTING,
        (L.HELD, L.NOT_HELD, L.ASKING),
        "wallet released",
        E.LEG_RELEASED,
        S.ABORTING,
        legs_after=(L.RELEASED, L.NOT_HELD, L.ASKING),
    ),
    case(
        S.ABORTING, (L.NOT_HELD, L.NOT_HELD, L.ASKING), "wallet refused", E.LEG_REPEATED, S.ABORTING
    ),
    case(
        S.ABORTED,
        (L.NOT_HELD, L.RELEASED, L.RELEASED),
        "wallet refused",
        E.LEG_REPEATED,
        S.ABORTED,
        "care:Refuse",
    ),
]


def _store(co: TransferCoordinator, c: Case) -> None:
    t = Transfer(
        "t",
        Flow.AWAY,
        "P1",
        GUANGZHOU,
        5_000,
        c.state,
        created_at_ms=0,
        updated_at_ms=0,
        candidates=[],
        payer="S1",
        payer_region=SHANGHAI,
        insured_region=HENAN,
    )
    if c.state.decided_abort:
        t.reason, t.detail = ReasonCode.TIMEOUT, "a region did not answer"
    co.store.save(t)
    for seq, (source, region, payer, state) in enumerate(
        zip(
            ("wallet", "own", "copayer"),
            (HENAN, HENAN, SHANGHAI),
            ("P1", "P1", "S1"),
            c.legs,
            strict=True,
        )
    ):
        held = 1_000 if state in (L.HELD, L.POSTED, L.CREDITED, L.RELEASED) else 0
        posted = 1_000 if state in (L.POSTED, L.CREDITED) else 0
        co.store.put_leg(
            Leg(f"t:{source[0]}", "t", seq, source, region, payer, state, held, posted)
        )


def _give(co: TransferCoordinator, given: str) -> Effects:
    inputs = {
        "wallet refused": lambda: co.reserve_result(
            ReserveResult("t:w", HENAN, 0, ReasonCode.ZERO_BALANCE), NOW
        ),
        "wallet posted": lambda: co.commit_result(CommitResult("t:w", HENAN, 1_000), NOW),
        "wallet credited": lambda: co.credited(Credited("t:w", GUANGZHOU), NOW),
        "wallet released": lambda: co.aborted(Aborted("t:w", HENAN), NOW),
    }
    return inputs[given]()


@pytest.mark.parametrize("c", CASES, ids=[f"{c.state}-{c.event}" for c in CASES])
def test_each_leg_answer_in_each_state(c: Case) -> None:
    co = coordinator()
    with co.store.db.transaction():
        _store(co, c)
    with co.store.db.transaction():
        effects = _give(co, c.given)
    t = co.store.transfer("t")
    assert t is not None and t.state is c.after
    assert [e for e in effects.events if isinstance(e, Anomaly)] == []
    assert {(ROLES[o.address], type(o.op).__name__) for o in effects.outgoing} == c.sends
    legs = tuple(leg.state for leg in co.store.legs("t"))
    assert legs == (c.legs_after or c.legs)
    if c.legs_after:  # a leg's change is a row of the transfer's history
        assert co.store.history("t")[-1].detail.startswith("leg t:")


def test_the_cases_cover_every_pair_of_the_legs_events() -> None:
    allowed = {
        (s, e) for s, events in TRANSITIONS.items() for e in events if e.name.startswith("LEG_")
    }
    assert {(c.state, c.event) for c in CASES} == allowed
