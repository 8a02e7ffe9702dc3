"""The settlement between regional funds, checked from the records alone.

Read with plain SQL (``read_clearinghouse_settlement``, ``read_region_settlement``: the
tables are the contract, as in ``gongji.ledger_snapshot``) and checked without the
services' code (``check_settlement``), by ``gongji audit`` and by the simulator's checker:

- every closed window with cross-region transfers is settled for every region it
  concerns, at the positions its clearing entries give, and its nets sum to zero;
- each region's advance moves by its net and its top-up, from the previous window's
  advance to the rule's target, and its settlement account holds the last one;
- every settlement has its state changes, the last one its state;
- a region's booking agrees with what the clearinghouse issued; a settlement the
  clearinghouse marked booked is booked at the region;
- a region's journal moved, for each booked window, exactly the window's bilateral
  amounts between its inter-region positions and its advance, and the top-up between
  its fund and its advance; its fund account holds the sum of its top-ups, and its
  advance account the advance of its last booked window.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SETTLEMENT_ADVANCE = "settlement:advance"
SETTLEMENT_FUND = "settlement:fund"
INTERREGION = "interregion:"
SETTLE_PREFIX = "settle:"
TOP_UP_PREFIX = "topup:"


@dataclass(frozen=True, slots=True)
class IssuedRow:
    window: int
    region: str
    paid_fen: int
    received_fen: int
    net_fen: int
    lines: int
    advance_before_fen: int
    target_fen: int
    top_up_fen: int
    advance_after_fen: int
    state: str


@dataclass(slots=True)
class ClearinghouseSettlement:
    """The clearinghouse's side: windows, clearing entries, settlements, accounts."""

    closed_windows: list[int] = field(default_factory=list)
    entries: dict[int, list[tuple[str, str, int]]] = field(default_factory=dict)
    """Window -> (payer, payee, amount) of each clearing entry."""
    issued: dict[tuple[int, str], IssuedRow] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    """Region -> the advance its settlement account holds."""
    last_state: dict[tuple[int, str], str] = field(default_factory=dict)
    """(window, region) -> the state of its latest state change."""


@dataclass(frozen=True, slots=True)
class BookedRow:
    window: int
    net_fen: int
    lines: int
    top_up_fen: int
    advance_fen: int
    state: str


@dataclass(slots=True)
class RegionSettlement:
    """One region's side: its settlements, their changes, the journal rows they wrote."""

    code: str
    rows: dict[int, BookedRow] = field(default_factory=dict)
    last_state: dict[int, str] = field(default_factory=dict)
    journal: list[tuple[str, str, str, int]] = field(default_factory=list)
    """(transfer id, debit, credit, amount) of every ``settle:`` and ``topup:`` row."""
    fund_balance: int = 0
    """Posted balance of ``settlement:fund``."""
    advance_held: int = 0
    """Debits less credits of ``settlement:advance``."""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def read_clearinghouse_settlement(db: sqlite3.Connection) -> ClearinghouseSettlement:
    out = ClearinghouseSettlement()
    out.closed_windows = [
        int(w) for (w,) in db.execute("SELECT window FROM windows WHERE state = 'closed'")
    ]
    for window, payer, payee, amount in db.execute(
        "SELECT window, payer_region, payee_region, amount_fen FROM clearing_entries"
    ):
        out.entries.setdefault(int(window), []).append((payer, payee, int(amount)))
    if "settlements" not in _tables(db):
        return out  # a file from before settlement: every closed window will show unsettled
    for row in db.execute(
        "SELECT window, region, paid_fen, received_fen, net_fen, lines, advance_before_fen,"
        " target_fen, top_up_fen, advance_after_fen, state FROM settlements"
    ):
        issued = IssuedRow(*row)
        out.issued[(issued.window, issued.region)] = issued
    out.accounts = {
        str(r): int(a) for r, a in db.execute("SELECT region, advance_fen FROM settlement_accounts")
    }
    for window, region, state in db.execute(
        "SELECT window, region, state FROM settlement_changes ORDER BY seq"
    ):
        out.last_state[(int(window), str(region))] = str(state)
    return out


def read_region_settlement(code: str, db: sqlite3.Connection) -> RegionSettlement:
    out = RegionSettlement(code)
    if "fund_settlements" not in _tables(db):
        return out
    for row in db.execute(
        "SELECT window, net_fen, lines, top_up_fen, advance_fen, state FROM fund_settlements"
    ):
        booked = BookedRow(*row)
        out.rows[booked.window] = booked
    for window, state in db.execute(
        "SELECT window, state FROM fund_settlement_changes ORDER BY seq"
    ):
        out.last_state[int(window)] = str(state)
    out.journal = [
        (str(t), str(d), str(c), int(a))
        for t, d, c, a in db.execute(
            "SELECT transfer_id, debit_account, credit_account, amount_fen FROM journal"
            " WHERE debit_account IN (?, ?) OR credit_account IN (?, ?) ORDER BY seq",
            (SETTLEMENT_ADVANCE, SETTLEMENT_FUND) * 2,
        )
    ]
    for id_, debits, credits in db.execute(
        "SELECT id, debits_posted, credits_posted FROM ledger_accounts WHERE id IN (?, ?)",
        (SETTLEMENT_ADVANCE, SETTLEMENT_FUND),
    ):
        if id_ == SETTLEMENT_FUND:
            out.fund_balance = int(credits) - int(debits)
        else:
            out.advance_held = int(debits) - int(credits)
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    region: str
    window: int
    detail: str


def _positions(entries: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    paid: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    for payer, payee, amount in entries:
        paid[payer] += amount
        received[payee] += amount
    return {r: (paid[r], received[r]) for r in paid.keys() | received.keys()}


def _bilateral(code: str, entries: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Counterparty -> what ``code`` paid it less what it paid ``code``."""
    owed: dict[str, int] = defaultdict(int)
    for payer, payee, amount in entries:
        if payer == code:
            owed[payee] += amount
        elif payee == code:
            owed[payer] -= amount
    return {b: a for b, a in owed.items() if a}


def check_settlement(
    ch: ClearinghouseSettlement, regions: Mapping[str, RegionSettlement]
) -> list[Problem]:
    """Every problem found; an empty list means the settlement is whole."""
    problems: list[Problem] = []
    problems += _check_windows(ch)
    problems += _check_advances(ch)
    for _, region in sorted(regions.items()):
        problems += _check_region(ch, region)
    return problems


def _check_windows(ch: ClearinghouseSettlement) -> list[Problem]:
    problems: list[Problem] = []
    closed = set(ch.closed_windows)
    by_window: dict[int, list[IssuedRow]] = defaultdict(list)
    for one in ch.issued.values():
        by_window[one.window].append(one)
    for window in sorted(closed | by_window.keys()):
        issued = {r.region: r for r in by_window.get(window, [])}
        if window not in closed:
            problems.append(Problem("", window, "settled, yet the window is not closed"))
            continue
        expected = _positions(ch.entries.get(window, []))
        for region in sorted(expected.keys() | issued.keys()):
            row = issued.get(region)
            paid, received = expected.get(region, (0, 0))
            if row is None:
                what = f"paid {paid}, received {received} fen in the window; never settled"
                problems.append(Problem(region, window, what))
                continue
            if (row.paid_fen, row.received_fen, row.net_fen) != (paid, received, received - paid):
                what = (
                    f"settled paid {row.paid_fen}, received {row.received_fen}, net"
                    f" {row.net_fen}; the clearing entries give {paid}, {received}"
                )
                problems.append(Problem(region, window, what))
            last = ch.last_state.get((window, region))
            if last != row.state:
                what = f"settlement {row.state}; its last state change says {last or 'nothing'}"
                problems.append(Problem(region, window, what))
        total = sum(r.net_fen for r in issued.values())
        if total:
            problems.append(Problem("", window, f"settlement nets sum to {total} fen"))
    return problems


def _check_advances(ch: ClearinghouseSettlement) -> list[Problem]:
    problems: list[Problem] = []
    by_region: dict[str, list[IssuedRow]] = defaultdict(list)
    for row in ch.issued.values():
        by_region[row.region].append(row)
    for region, rows in sorted(by_region.items()):
        advance = 0
        for row in sorted(rows, key=lambda r: r.window):
            after = row.advance_before_fen + row.net_fen + row.top_up_fen
            if row.advance_before_fen != advance:
                what = f"advance before {row.advance_before_fen}; the previous close left {advance}"
                problems.append(Problem(region, row.window, what))
            if row.advance_after_fen != after or after != row.target_fen:
                what = (
                    f"advance {row.advance_before_fen} + net {row.net_fen} + top-up"
                    f" {row.top_up_fen} = {after}; recorded {row.advance_after_fen},"
                    f" target {row.target_fen}"
                )
                problems.append(Problem(region, row.window, what))
            advance = row.advance_after_fen
        held = ch.accounts.get(region)
        if held != advance:
            what = f"settlement account holds {held}; its last settlement left {advance}"
            problems.append(Problem(region, 0, what))
    for region in sorted(ch.accounts.keys() - by_region.keys()):
        what = f"settlement account holds {ch.accounts[region]} with no settlement"
        problems.append(Problem(region, 0, what))
    return problems


def _check_region(ch: ClearinghouseSettlement, r: RegionSettlement) -> list[Problem]:
    problems: list[Problem] = []
    code = r.code
    booked = {w: row for w, row in r.rows.items() if row.state == "booked"}
    for window, row in sorted(r.rows.items()):
        issued = ch.issued.get((window, code))
        if issued is None:
            problems.append(Problem(code, window, f"{row.state} a settlement never issued"))
        elif (row.net_fen, row.lines, row.top_up_fen, row.advance_fen) != (
            issued.net_fen,
            issued.lines,
            issued.top_up_fen,
            issued.advance_after_fen,
        ):
            what = (
                f"{row.state} net {row.net_fen}, top-up {row.top_up_fen}, advance"
                f" {row.advance_fen}; issued {issued.net_fen}, {issued.top_up_fen},"
                f" {issued.advance_after_fen}"
            )
            problems.append(Problem(code, window, what))
        if r.last_state.get(window) != row.state:
            said = r.last_state.get(window) or "nothing"
            problems.append(Problem(code, window, f"{row.state}; its last change says {said}"))
    for (window, region), row_there in sorted(ch.issued.items()):
        if region == code and row_there.state == "booked" and window not in booked:
            problems.append(Problem(code, window, "booked at the clearinghouse, not here"))
    # The journal against the clearing entries (not the region's own lines).
    moved: dict[int, dict[str, int]] = defaultdict(dict)
    top_ups: dict[int, int] = defaultdict(int)
    for tid, debit, credit, amount in r.journal:
        if tid.startswith(SETTLE_PREFIX):
            _, window_text, counterparty = tid.split(":", 2)
            signed = amount if debit.startswith(INTERREGION) else -amount
            side = debit if debit.startswith(INTERREGION) else credit
            if side != INTERREGION + counterparty:
                what = f"{tid} moves {amount} fen between {debit} and {credit}"
                problems.append(Problem(code, int(window_text), what))
            window = int(window_text)
            moved[window][counterparty] = moved[window].get(counterparty, 0) + signed
        elif tid.startswith(TOP_UP_PREFIX):
            window = int(tid[len(TOP_UP_PREFIX) :])
            top_ups[window] += amount if debit == SETTLEMENT_ADVANCE else -amount
        else:
            problems.append(Problem(code, 0, f"{tid} moves {amount} fen into {credit}"))
    for window in sorted(booked.keys() | moved.keys() | top_ups.keys()):
        expected = _bilateral(code, ch.entries.get(window, [])) if window in booked else {}
        if moved.get(window, {}) != expected:
            what = f"the journal settled {moved.get(window, {})}; the clearing entries {expected}"
            problems.append(Problem(code, window, what))
        top_up = booked[window].top_up_fen if window in booked else 0
        if top_ups.get(window, 0) != top_up:
            what = f"the journal topped up {top_ups.get(window, 0)}; the settlement {top_up}"
            problems.append(Problem(code, window, what))
    paid_in = sum(row.top_up_fen for row in booked.values())
    if r.fund_balance != paid_in:
        what = f"fund account holds {r.fund_balance}; its settlements' top-ups sum to {paid_in}"
        problems.append(Problem(code, 0, what))
    advance = sum(row.net_fen + row.top_up_fen for row in booked.values())
    if r.advance_held != advance:
        what = f"advance account holds {r.advance_held}; its settlements leave {advance}"
        problems.append(Problem(code, 0, what))
    return problems
