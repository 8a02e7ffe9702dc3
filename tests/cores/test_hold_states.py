"""The life of a hold, pair by pair: every (state, event) is an answer or a loud error.

``SPEC`` below is the hold's protocol written out once more, as the tests' own statement
of it: the table in ``regions.hold_states`` must say exactly this, and the payer region's
core must do what it says, for every pair an operation can express.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest

from contracts.effects import Anomaly, AnyEvent, Outgoing, Repaired
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    Abort,
    Aborted,
    Commit,
    CommitResult,
    EnrollPerson,
    Operation,
    Repair,
    Reserve,
    ReserveResult,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Insurance
from regions.core import RegionCore
from regions.hold_states import (
    TRANSITIONS,
    Answer,
    HoldEvent,
    HoldState,
    HoldStateError,
    Transition,
    transition,
)
from regions.store import RegionStore, person_account

S, E, A, R = HoldState, HoldEvent, Answer, ReasonCode

SPEC: dict[tuple[HoldState, HoldEvent], tuple[HoldState, Answer, ReasonCode | None]] = {
    (S.ABSENT, E.RESERVE): (S.PENDING, A.HELD, None),
    (S.ABSENT, E.RESERVE_REFUSED): (S.REFUSED, A.NOT_HELD, None),
    (S.ABSENT, E.COMMIT): (S.ABSENT, A.NOT_POSTED, R.UNKNOWN_TRANSFER),
    (S.ABSENT, E.ABORT): (S.ABORTED_BEFORE_RESERVE, A.ABORTED, R.TIMEOUT),
    (S.ABSENT, E.REPAIR): (S.POSTED, A.NOTHING, None),
    (S.PENDING, E.RESERVE_REPEATED): (S.PENDING, A.HELD, None),
    (S.PENDING, E.RESERVE_MISMATCH): (S.PENDING, A.NOT_HELD, R.DUPLICATE_MISMATCH),
    (S.PENDING, E.COMMIT): (S.POSTED, A.POSTED, None),
    (S.PENDING, E.ABORT): (S.RELEASED_BY_ABORT, A.ABORTED, R.TIMEOUT),
    (S.PENDING, E.EXPIRE): (S.EXPIRED, A.NOTHING, R.HOLD_EXPIRED),
    (S.PENDING, E.REPAIR): (S.POSTED, A.NOTHING, None),
    (S.ABSENT, E.RESERVE_PREPARED): (S.PREPARED, A.HELD, None),
    (S.PREPARED, E.RESERVE_REPEATED): (S.PREPARED, A.HELD, None),
    (S.PREPARED, E.RESERVE_MISMATCH): (S.PREPARED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
    (S.PREPARED, E.COMMIT): (S.POSTED, A.POSTED, None),
    (S.PREPARED, E.ABORT): (S.RELEASED_BY_ABORT, A.ABORTED, R.TIMEOUT),
    (S.PREPARED, E.REPAIR): (S.POSTED, A.NOTHING, None),
    (S.POSTED, E.RESERVE_REPEATED): (S.POSTED, A.HELD, None),
    (S.POSTED, E.RESERVE_MISMATCH): (S.POSTED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
    (S.POSTED, E.COMMIT): (S.POSTED, A.POSTED, None),
    (S.POSTED, E.REPAIR): (S.POSTED, A.NOTHING, None),
    (S.EXPIRED, E.RESERVE_REPEATED): (S.EXPIRED, A.NOT_HELD, R.HOLD_EXPIRED),
    (S.EXPIRED, E.RESERVE_MISMATCH): (S.EXPIRED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
    (S.EXPIRED, E.COMMIT): (S.EXPIRED, A.NOT_POSTED, R.HOLD_EXPIRED),
    (S.EXPIRED, E.ABORT): (S.EXPIRED, A.ABORTED, None),
    (S.EXPIRED, E.REPAIR): (S.POSTED, A.NOTHING, None),
    (S.RELEASED_BY_ABORT, E.RESERVE_REPEATED): (S.RELEASED_BY_ABORT, A.NOT_HELD, R.TIMEOUT),
    (S.RELEASED_BY_ABORT, E.RESERVE_MISMATCH): (
        S.RELEASED_BY_ABORT,
        A.NOT_HELD,
        R.DUPLICATE_MISMATCH,
    ),
    (S.RELEASED_BY_ABORT, E.ABORT): (S.RELEASED_BY_ABORT, A.ABORTED, None),
    (S.REFUSED, E.RESERVE_REPEATED): (S.REFUSED, A.NOT_HELD, None),
    (S.REFUSED, E.RESERVE_MISMATCH): (S.REFUSED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
    (S.REFUSED, E.ABORT): (S.REFUSED, A.ABORTED, None),
    (S.ABORTED_BEFORE_RESERVE, E.RESERVE_REPEATED): (
        S.ABORTED_BEFORE_RESERVE,
        A.NOT_HELD,
        R.TIMEOUT,
    ),
    (S.ABORTED_BEFORE_RESERVE, E.ABORT): (S.ABORTED_BEFORE_RESERVE, A.ABORTED, None),
}
"""Every allowed pair; every other pair of ``product(HoldState, HoldEvent)`` is an error."""

EVERY_PAIR = list(product(HoldState, HoldEvent))


@pytest.mark.parametrize(("state", "event"), EVERY_PAIR, ids=lambda x: str(x))
def test_the_table_allows_exactly_the_specified_pairs(state: HoldState, event: HoldEvent) -> None:
    if (state, event) in SPEC:
        next_state, answer, reason = SPEC[state, event]
        assert transition("t", state, event) == Transition(next_state, answer, reason)
    else:
        with pytest.raises(HoldStateError) as raised:
            transition("t", state, event)
        assert (raised.value.transfer_id, raised.value.state, raised.value.event) == (
            "t",
            state,
            event,
        )


def test_the_table_names_no_pair_outside_the_spec() -> None:
    listed = {(state, event) for state, row in TRANSITIONS.items() for event in row}
    assert listed == set(SPEC)
    assert HoldState.ABSENT in TRANSITIONS and all(s in TRANSITIONS for s in HoldState)


# --- the payer region's core, driven into each state and given each event ---

WUHAN, CHENGDU = "420100", "510100"
TID, TIMEOUT_MS, HELD_FEN, BALANCE_FEN = "t1", 60_000, 5_000, 50_000
FIRST = Reserve(TID, "A1", HELD_FEN, CHENGDU, TIMEOUT_MS)
PREPARED = Reserve(TID, "A1", HELD_FEN, CHENGDU, TIMEOUT_MS, prepared=True)
"""One leg of several (a bill at a region of care): a hold that never expires by itself."""
REFUSABLE = Reserve(TID, "Z0", HELD_FEN, CHENGDU, TIMEOUT_MS)
"""Z0 has a zero balance: the reserve is refused."""


class Payer:
    """Wuhan's core over its own in-memory store, with A1 (50,000 fen) and Z0 (none)."""

    def __init__(self) -> None:
        self.core = RegionCore(WUHAN, RegionStore.open(":memory:"))
        self.now_ms = 0
        self.events: list[AnyEvent] = []
        """What the core returned besides its answers, in order (a test may clear it)."""
        self.send(EnrollPerson("A1", Insurance.EMPLOYEE, BALANCE_FEN))
        self.send(EnrollPerson("Z0", Insurance.EMPLOYEE, 0))

    def send(self, op: Operation) -> list[Outgoing]:
        with self.core.store.db.transaction():
            effects = self.core.handle(op, self.now_ms)
        self.events += effects.events
        return effects.outgoing

    def tick(self) -> list[Outgoing]:
        with self.core.store.db.transaction():
            effects = self.core.tick(self.now_ms)
        self.events += effects.events
        return effects.outgoing

    def state(self) -> HoldState:
        hold = self.core.store.hold(TID)
        return HoldState.ABSENT if hold is None else hold.state

    def available(self) -> int:
        return self.core.books.available(person_account("A1"))


def _expire(p: Payer) -> None:
    p.send(FIRST)
    p.now_ms = TIMEOUT_MS
    p.tick()


SETUPS: dict[HoldState, tuple[Callable[[Payer], object], Reserve]] = {
    S.ABSENT: (lambda p: None, FIRST),
    S.PENDING: (lambda p: p.send(FIRST), FIRST),
    S.PREPARED: (lambda p: p.send(PREPARED), PREPARED),
    S.POSTED: (lambda p: (p.send(FIRST), p.send(Commit(TID))), FIRST),
    S.EXPIRED: (_expire, FIRST),
    S.RELEASED_BY_ABORT: (lambda p: (p.send(FIRST), p.send(Abort(TID))), FIRST),
    S.REFUSED: (lambda p: p.send(REFUSABLE), REFUSABLE),
    S.ABORTED_BEFORE_RESERVE: (lambda p: p.send(Abort(TID)), FIRST),
}
"""How to bring a hold into each state, and the reserve that state was reached with."""


def _operation(state: HoldState, event: HoldEvent) -> Operation | None:
    """The operation that is ``event`` for a hold in ``state``; None: no operation is
    (the region's own classification, or its timer, never produces that pair)."""
    reserved_with = SETUPS[state][1]
    known = state is not S.ABSENT
    match event:
        case E.RESERVE if not known:
            return FIRST
        case E.RESERVE_REFUSED if not known:
            return REFUSABLE
        case E.RESERVE_PREPARED if not known:
            return PREPARED
        case E.RESERVE_REPEATED if known:
            return reserved_with
        case E.RESERVE_MISMATCH if known and state is not S.ABORTED_BEFORE_RESERVE:
            return Reserve(TID, reserved_with.payer, HELD_FEN + 1, CHENGDU, TIMEOUT_MS)
        case E.COMMIT:
            return Commit(TID)
        case E.ABORT:
            return Abort(TID)
        case E.REPAIR:
            return Repair(TID, 1, "payer", "A1", CHENGDU, HELD_FEN)
    return None  # EXPIRE comes from the timer (below)


def _expected_answer(state: HoldState, answer: Answer, reason: ReasonCode | None) -> list[Outgoing]:
    held = HELD_FEN if state in (S.PENDING, S.PREPARED, S.POSTED) else 0
    refusal = reason or ReasonCode.ZERO_BALANCE  # Z0's refusal, as decided and recorded
    messages: dict[Answer, list[Operation]] = {
        A.HELD: [ReserveResult(TID, WUHAN, held)],
        A.NOT_HELD: [ReserveResult(TID, WUHAN, 0, refusal)],
        A.POSTED: [CommitResult(TID, WUHAN, HELD_FEN)],
        A.NOT_POSTED: [CommitResult(TID, WUHAN, 0, reason)],
        A.ABORTED: [Aborted(TID, WUHAN)],
        A.NOTHING: [],
    }
    return [Outgoing(CLEARINGHOUSE, op) for op in messages[answer]]


EXPRESSIBLE = [(s, e) for s, e in EVERY_PAIR if _operation(s, e) is not None]


@pytest.mark.parametrize(("state", "event"), EXPRESSIBLE, ids=lambda x: str(x))
def test_the_payer_core_does_what_the_table_says(state: HoldState, event: HoldEvent) -> None:
    p = Payer()
    SETUPS[state][0](p)
    assert p.state() is state
    p.events.clear()
    before = p.available()
    p.now_ms += 1_000  # before any pending hold's deadline
    op = _operation(state, event)
    assert op is not None
    out = p.send(op)
    events = p.events
    anomalies = [e for e in events if isinstance(e, Anomaly)]
    if (state, event) not in SPEC:
        # Outside the table: said loudly, answered with nothing, nothing changed.
        assert out == []
        assert [(a.transfer_id, str(state) in a.what) for a in anomalies] == [(TID, True)]
        assert (p.state(), p.available()) == (state, before)
    else:
        next_state, answer, reason = SPEC[state, event]
        assert anomalies == []
        assert p.state() is next_state
        assert out == _expected_answer(next_state, answer, reason)
        # The account shows the amount reserved or moved exactly when the hold says so.
        moved = next_state in (S.PENDING, S.PREPARED, S.POSTED) and SETUPS[state][1] in (
            FIRST,
            PREPARED,
        )
        assert p.available() == BALANCE_FEN - (HELD_FEN if moved else 0)
        if event is E.REPAIR:
            assert [e for e in events if isinstance(e, Repaired)] == [Repaired(1, WUHAN, TID)]
    assert p.core.books.check() == []


@pytest.mark.parametrize("state", list(HoldState), ids=str)
def test_the_expiry_timer_releases_pending_holds_only(state: HoldState) -> None:
    p = Payer()
    SETUPS[state][0](p)
    p.events.clear()
    p.now_ms += 10 * TIMEOUT_MS
    assert p.tick() == []
    assert [e for e in p.events if isinstance(e, Anomaly)] == []
    if (state, E.EXPIRE) in SPEC:
        assert p.state() is SPEC[state, E.EXPIRE][0]
    else:
        assert p.state() is state  # the timer never fires EXPIRE on it
    kept = (S.POSTED, S.PREPARED)  # a prepared hold outlives any deadline
    assert p.available() == BALANCE_FEN - (HELD_FEN if p.state() in kept else 0)


def test_a_commit_after_the_deadline_meets_an_expired_hold_though_the_timer_has_not_run() -> None:
    p = Payer()
    p.send(FIRST)
    p.now_ms = TIMEOUT_MS  # the deadline; no tick yet
    assert p.send(Commit(TID)) == [
        Outgoing(CLEARINGHOUSE, CommitResult(TID, WUHAN, 0, ReasonCode.HOLD_EXPIRED))
    ]
    assert (p.state(), p.available()) == (S.EXPIRED, BALANCE_FEN)
    # Asked again, it answers the same; an abort after the expiry is a harmless repeat.
    assert p.send(Commit(TID))[0].op == CommitResult(TID, WUHAN, 0, ReasonCode.HOLD_EXPIRED)
    assert p.send(Abort(TID)) == [Outgoing(CLEARINGHOUSE, Aborted(TID, WUHAN))]
    assert [e for e in p.events if isinstance(e, Anomaly)] == []
    assert p.core.books.check() == []


def test_a_repeated_commit_after_posting_posts_once_and_answers_the_same() -> None:
    p = Payer()
    p.send(FIRST)
    first = p.send(Commit(TID))
    assert (
        p.send(Commit(TID))
        == first
        == [Outgoing(CLEARINGHOUSE, CommitResult(TID, WUHAN, HELD_FEN))]
    )
    totals = p.core.books.totals(person_account("A1"))
    assert totals is not None and (totals.debits_posted, totals.debits_pending) == (HELD_FEN, 0)
