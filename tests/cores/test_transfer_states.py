"""The transfer's state table, pair by pair, through the real coordinator.

Each case puts one transfer in a state (a record in a real store), gives the coordinator
one input, and checks what became of it: its state, what it sent to whom, whether it
reported an anomaly, and the history row of a change. The cases together cover every
(state, event) pair the table allows; every other pair is an anomaly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import Candidate, ClearinghouseStore, Quote, Transfer
from clearinghouse.transfer_states import (
    TRANSITIONS,
    TransferEvent,
    TransferState,
    TransferStateError,
    transition,
)
from contracts.effects import Anomaly, Effects, Retried
from contracts.identifiers import region_address
from contracts.operations import (
    Aborted,
    BalanceQuoted,
    CommitResult,
    Credited,
    RecordBinding,
    RegisterRegion,
    Relationship,
    RequestAid,
    ReserveResult,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow

WUHAN, SHANGHAI, CHENGDU = "420100", "310000", "510100"
ROLES = {region_address(WUHAN): "payer", region_address(SHANGHAI): "other"}
ROLES[region_address(CHENGDU)] = "payee"
NOW, DUE = 1_000, 3_000
SETTINGS = CoordinatorSettings()

S, E = TransferState, TransferEvent
Q, R, C, CR, D, AG, A = (
    S.QUOTING,
    S.RESERVING,
    S.COMMITTING,
    S.CREDITING,
    S.COMMITTED,
    S.ABORTING,
    S.ABORTED,
)


def coordinator() -> TransferCoordinator:
    """Wuhan and Shanghai co-payers; B1 bound to A1 (Wuhan), B2 to A1 and A2 (Shanghai)."""
    core = ClearinghouseCore(ClearinghouseStore.open(":memory:"), SETTINGS)
    with core.store.db.transaction():
        for code in (WUHAN, SHANGHAI, CHENGDU):
            core.handle(RegisterRegion(code, f"region {code}", "p", True), 0)
        for bid, copayer, region, beneficiary in (
            ("b1", "A1", WUHAN, "B1"),
            ("b2", "A1", WUHAN, "B2"),
            ("b3", "A2", SHANGHAI, "B2"),
        ):
            core.handle(
                RecordBinding(bid, copayer, region, beneficiary, CHENGDU, Relationship.CHILD), 0
            )
    return core.coordinator


def record(state: TransferState) -> Transfer:
    """Transfer ``t`` of 5,000 fen for B2, as the coordinator leaves it in ``state``."""
    t = Transfer(
        "t",
        Flow.COPAY,
        "B2",
        CHENGDU,
        5_000,
        state,
        created_at_ms=0,
        updated_at_ms=0,
        candidates=[Candidate("A1", WUHAN), Candidate("A2", SHANGHAI)],
        payer="A1",
        payer_region=WUHAN,
        next_action_ms=DUE,
    )
    if state is Q:
        t.payer, t.payer_region = "", ""
    if state in (C, CR, D):
        t.held_fen = 5_000
    if state in (CR, D):
        t.posted_fen = 5_000
    if state.decided_abort:
        t.reason, t.detail = ReasonCode.TIMEOUT, "payer region 420100 did not answer"
    if state.final:
        t.next_action_ms = None
    return t


@dataclass(frozen=True)
class Case:
    state: TransferState | None
    """None: no record yet (a new request)."""
    given: str
    """The input: see ``_give``."""
    event: TransferEvent
    after: TransferState | None
    """None: an anomaly, and the transfer is left as it was."""
    sends: frozenset[tuple[str, str]] = frozenset()
    quotes: tuple[Quote, ...] = ()
    """Quotes received before the input."""
    timer: bool = False
    """Give a final transfer a timer (which it never has) to see the table refuse it."""

    @property
    def id(self) -> str:
        return f"{self.state or 'new'}-{self.given}"


def case(
    state: TransferState | None,
    given: str,
    event: TransferEvent,
    after: TransferState | None,
    *sends: str,
    quotes: tuple[Quote, ...] = (),
    timer: bool = False,
) -> Case:
    pairs = frozenset(tuple(s.split(":")) for s in sends)  # "payer:Commit"
    return Case(state, given, event, after, pairs, quotes, timer)  # type: ignore[arg-type]


REFUSAL_AND_ABORT = ("payee:Refuse", "payer:Abort")
QUOTES = ("payer:QueryBalance", "other:QueryBalance")
A2_QUOTED = (Quote("A2", SHANGHAI, 1_000, None),)
A2_ZERO = (Quote("A2", SHANGHAI, 0, None),)

CASES = [
    # A new request, checked at once.
    case(None, "request B1", E.PAYER_KNOWN, R, "payer:Reserve"),
    case(None, "request B2", E.QUOTES_ASKED, Q, *QUOTES),
    case(None, "request B9", E.REQUEST_REFUSED, A, "payee:Refuse"),
    # The same request again: the current step again (a final one: its outcome).
    case(Q, "repeat", E.REQUEST_REPEATED, Q, *QUOTES),
    case(R, "repeat", E.REQUEST_REPEATED, R, "payer:Reserve"),
    case(C, "repeat", E.REQUEST_REPEATED, C, "payer:Commit"),
    case(CR, "repeat", E.REQUEST_REPEATED, CR, "payee:Credit"),
    case(D, "repeat", E.REQUEST_REPEATED, D, "payee:Credit"),
    case(AG, "repeat", E.REQUEST_REPEATED, AG, *REFUSAL_AND_ABORT),
    case(A, "repeat", E.REQUEST_REPEATED, A, "payee:Refuse"),
    # Quotes: the choice, once all are in; a late quote changes nothing.
    case(Q, "quote A1", E.QUOTE_RECEIVED, Q),
    case(Q, "quote A1", E.QUOTES_COMPLETE, R, "payer:Reserve", quotes=A2_QUOTED),
    case(Q, "zero quote A1", E.QUOTES_FAILED, A, "payee:Refuse", quotes=A2_ZERO),
    case(R, "quote A1", E.QUOTE_RECEIVED, R),
    case(C, "quote A1", E.QUOTE_RECEIVED, C),
    case(CR, "quote A1", E.QUOTE_RECEIVED, CR),
    case(D, "quote A1", E.QUOTE_RECEIVED, D),
    case(AG, "quote A1", E.QUOTE_RECEIVED, AG, *REFUSAL_AND_ABORT),
    case(A, "quote A1", E.QUOTE_RECEIVED, A, "payee:Refuse"),
    # The payer's hold.
    case(Q, "held", E.RESERVE_HELD, None),
    case(R, "held", E.RESERVE_HELD, C, "payer:Commit"),
    case(C, "held", E.RESERVE_HELD, C),
    case(CR, "held", E.RESERVE_HELD, CR),
    case(D, "held", E.RESERVE_HELD, D),
    case(AG, "held", E.RESERVE_HELD, AG, "payer:Abort"),
    case(A, "held", E.RESERVE_HELD, AG, "payer:Abort"),
    case(Q, "refused", E.RESERVE_REFUSED, None),
    case(R, "refused", E.RESERVE_REFUSED, A, "payee:Refuse"),
    case(C, "refused", E.RESERVE_REFUSED, C),
    case(CR, "refused", E.RESERVE_REFUSED, CR),
    case(D, "refused", E.RESERVE_REFUSED, D),
    case(AG, "refused", E.RESERVE_REFUSED, AG, *REFUSAL_AND_ABORT),
    case(A, "refused", E.RESERVE_REFUSED, A, "payee:Refuse"),
    # The payer's post (or its hold's expiry): the commit point.
    case(Q, "posted", E.COMMIT_POSTED, None),
    case(R, "posted", E.COMMIT_POSTED, None),
    case(C, "posted", E.COMMIT_POSTED, CR, "payee:Credit"),
    case(CR, "posted", E.COMMIT_POSTED, CR),
    case(D, "posted", E.COMMIT_POSTED, D),
    case(AG, "posted", E.COMMIT_POSTED, None),
    case(A, "posted", E.COMMIT_POSTED, None),
    case(Q, "expired", E.COMMIT_EXPIRED, None),
    case(R, "expired", E.COMMIT_EXPIRED, None),
    case(C, "expired", E.COMMIT_EXPIRED, A, "payee:Refuse"),
    case(CR, "expired", E.COMMIT_EXPIRED, None),
    case(D, "expired", E.COMMIT_EXPIRED, None),
    case(AG, "expired", E.COMMIT_EXPIRED, AG, *REFUSAL_AND_ABORT),
    case(A, "expired", E.COMMIT_EXPIRED, A, "payee:Refuse"),
    # The payee's credit.
    case(Q, "credited", E.CREDITED, None),
    case(R, "credited", E.CREDITED, None),
    case(C, "credited", E.CREDITED, None),
    case(CR, "credited", E.CREDITED, D),
    case(D, "credited", E.CREDITED, D),
    case(AG, "credited", E.CREDITED, None),
    case(A, "credited", E.CREDITED, None),
    # The payer's answer to an abort.
    case(Q, "abort confirmed", E.ABORT_CONFIRMED, None),
    case(R, "abort confirmed", E.ABORT_CONFIRMED, None),
    case(C, "abort confirmed", E.ABORT_CONFIRMED, None),
    case(CR, "abort confirmed", E.ABORT_CONFIRMED, None),
    case(D, "abort confirmed", E.ABORT_CONFIRMED, None),
    case(AG, "abort confirmed", E.ABORT_CONFIRMED, A),
    case(A, "abort confirmed", E.ABORT_CONFIRMED, A),
    # Timers: deadlines, then retries of decided steps.
    case(Q, "due", E.QUOTES_FAILED, A, "payee:Refuse"),
    case(Q, "due", E.QUOTES_COMPLETE, R, "other:Reserve", quotes=A2_QUOTED),
    case(R, "due", E.RESERVE_TIMEOUT, AG, *REFUSAL_AND_ABORT),
    case(C, "due", E.RETRY_DUE, C, "payer:Commit"),
    case(CR, "due", E.RETRY_DUE, CR, "payee:Credit"),
    case(AG, "due", E.RETRY_DUE, AG, *REFUSAL_AND_ABORT),
    case(D, "due", E.RETRY_DUE, None, timer=True),
    case(A, "due", E.RETRY_DUE, None, timer=True),
    # A restart: every unfinished step again.
    case(Q, "resume", E.RESUMED, Q, *QUOTES),
    case(Q, "resume", E.RESUMED, Q, "other:QueryBalance", quotes=(Quote("A1", WUHAN, 9, None),)),
    case(R, "resume", E.RESUMED, R, "payer:Reserve"),
    case(C, "resume", E.RESUMED, C, "payer:Commit"),
    case(CR, "resume", E.RESUMED, CR, "payee:Credit"),
    case(AG, "resume", E.RESUMED, AG, *REFUSAL_AND_ABORT),
]


def _give(co: TransferCoordinator, given: str) -> Effects:
    if given.startswith("request "):
        return co.request_aid(RequestAid("t", given.split()[1], CHENGDU, 5_000), NOW)
    inputs = {
        "repeat": lambda: co.request_aid(RequestAid("t", "B2", CHENGDU, 5_000), NOW),
        "quote A1": lambda: co.balance_quoted(BalanceQuoted("t", "A1", WUHAN, 3_000), NOW),
        "zero quote A1": lambda: co.balance_quoted(BalanceQuoted("t", "A1", WUHAN, 0), NOW),
        "held": lambda: co.reserve_result(ReserveResult("t", WUHAN, 5_000), NOW),
        "refused": lambda: co.reserve_result(
            ReserveResult("t", WUHAN, 0, ReasonCode.ZERO_BALANCE), NOW
        ),
        "posted": lambda: co.commit_result(CommitResult("t", WUHAN, 5_000), NOW),
        "expired": lambda: co.commit_result(
            CommitResult("t", WUHAN, 0, ReasonCode.HOLD_EXPIRED), NOW
        ),
        "credited": lambda: co.credited(Credited("t", CHENGDU), NOW),
        "abort confirmed": lambda: co.aborted(Aborted("t", WUHAN), NOW),
        "due": lambda: co.tick(DUE),
        "resume": lambda: co.resume(NOW),
    }
    return inputs[given]()


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_each_input_in_each_state(c: Case) -> None:
    co = coordinator()
    before = None
    if c.state is not None:
        before = record(c.state)
        if c.timer:
            before.next_action_ms = DUE
        with co.store.db.transaction():
            co.store.save(before)
            for q in c.quotes:
                co.store.add_quote("t", q)
    with co.store.db.transaction():
        effects = _give(co, c.given)
    sent = effects.outgoing
    t = co.store.transfer("t")
    assert t is not None
    anomalies = [e for e in effects.events if isinstance(e, Anomaly)]
    assert {(ROLES[o.address], type(o.op).__name__) for o in sent} == c.sends
    assert len(sent) == len(c.sends)  # nothing twice
    history = co.store.history("t")
    if c.after is None:
        assert before is not None and anomalies and t.state is before.state
        assert (c.state, c.event) not in [(s, e) for s in TRANSITIONS for e in TRANSITIONS[s]]
        if c.timer:
            assert t.next_action_ms is None  # a stray timer is dropped, not fired forever
        assert history == []
        return
    assert anomalies == []
    assert t.state is c.after
    if c.state is None or c.after is not c.state:
        last = history[-1]
        assert (last.from_state, last.to_state, last.event) == (
            c.state or S.RECEIVED,
            c.after,
            c.event,
        )
        assert last.at_ms == (DUE if c.given == "due" else NOW)
    else:
        assert history == []
    if c.after is AG:
        assert t.next_action_ms is not None  # the abort is retried until answered
    if c.event is E.RETRY_DUE:
        [retried] = [e for e in effects.events if isinstance(e, Retried)]
        assert retried.transfer_id == "t" and t.attempts == 1


def test_the_cases_cover_every_pair_the_table_allows() -> None:
    # The legs' events (a bill at a region of care): test_away_states.
    allowed = {
        (s, e) for s, events in TRANSITIONS.items() for e in events if not e.name.startswith("LEG_")
    }
    covered = {(c.state or S.RECEIVED, c.event) for c in CASES if c.after is not None}
    assert covered == allowed


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in TransferState for e in TransferEvent if e not in TRANSITIONS.get(s, {})],
)
def test_every_other_pair_is_an_error(state: TransferState, event: TransferEvent) -> None:
    with pytest.raises(TransferStateError, match=f"{event.value} is not expected while"):
        transition(state, event)


def test_a_new_request_starts_its_history_and_a_commit_ends_it() -> None:
    co = coordinator()
    steps: list[Callable[[], Effects]] = [
        lambda: co.request_aid(RequestAid("t", "B1", CHENGDU, 5_000), NOW),
        lambda: co.reserve_result(ReserveResult("t", WUHAN, 5_000), NOW + 10),
        lambda: co.commit_result(CommitResult("t", WUHAN, 5_000), NOW + 20),
        lambda: co.credited(Credited("t", CHENGDU), NOW + 30),
    ]
    for step in steps:
        with co.store.db.transaction():
            step()
    history = co.store.history("t")
    assert [(h.seq, h.from_state, h.to_state, h.event) for h in history] == [
        (1, None, S.RECEIVED, E.REQUEST_RECEIVED),
        (2, S.RECEIVED, S.RESERVING, E.PAYER_KNOWN),
        (3, S.RESERVING, S.COMMITTING, E.RESERVE_HELD),
        (4, S.COMMITTING, S.CREDITING, E.COMMIT_POSTED),
        (5, S.CREDITING, S.COMMITTED, E.CREDITED),
    ]
    assert [h.at_ms for h in history] == [NOW, NOW, NOW + 10, NOW + 20, NOW + 30]
    assert "A1 in 420100" in history[1].detail and "5000 fen" in history[3].detail


def test_a_rolled_back_step_leaves_no_history() -> None:
    co = coordinator()
    with co.store.db.transaction():
        co.request_aid(RequestAid("t", "B1", CHENGDU, 5_000), NOW)
    with pytest.raises(RuntimeError), co.store.db.transaction():
        co.reserve_result(ReserveResult("t", WUHAN, 5_000), NOW)
        raise RuntimeError("the batch fails before its commit")
    assert [h.to_state for h in co.store.history("t")] == [S.RECEIVED, S.RESERVING]


def test_an_older_file_gets_its_flags_as_states(tmp_path: Path) -> None:
    """A file written when crediting and aborting were flags on other states."""
    path = tmp_path / "clearinghouse.sqlite"
    store = ClearinghouseStore.open(path)
    with store.db.transaction():
        for tid, state in (("posted", C), ("pending", A), ("plain", C), ("done", A)):
            store.save(replace(record(state), transfer_id=tid))
    store.close()
    with sqlite3.connect(path) as sql:
        for column in ("payer_posted", "payee_credited", "abort_pending"):
            sql.execute(f"ALTER TABLE transfers ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        sql.execute("UPDATE transfers SET payer_posted = 1 WHERE transfer_id = 'posted'")
        sql.execute("UPDATE transfers SET abort_pending = 1 WHERE transfer_id = 'pending'")
    sql.close()
    for _ in range(2):  # and opening it again changes nothing more
        store = ClearinghouseStore.open(path)
        expected = {"posted": CR, "pending": AG, "plain": C, "done": A}
        for tid, state in expected.items():
            t = store.transfer(tid)
            assert t is not None and t.state is state
        columns = {r[1] for r in store.db.connection.execute("PRAGMA table_info(transfers)")}
        assert "abort_pending" not in columns
        store.close()
