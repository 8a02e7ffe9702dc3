"""Money moved between provinces, window by window: ``gongji report flows``.

Read from the clearinghouse's records (its SQLite file, read-only, as the audit reads
it; or the simulator's in-memory database): every clearing entry of a window names its
payer and payee region, which a matrix of pairs needs and the clearinghouse's window
reports (totals per region) do not carry. A region's province is its code's first two
digits followed by ``0000`` (``contracts.identifiers.province_code``). For each window:
the province x province matrix (payer row, payee column), each province's net position
(received less paid; they sum to zero), and the settlement of the window (what the
provinces' funds paid into their advances, and whether every region booked it).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.identifiers import province_code
from gongji.ledger_snapshot import CLEARINGHOUSE_FILE, SnapshotError, read_only


@dataclass(slots=True)
class WindowFlows:
    window: int
    state: str
    opened_at_ms: int
    closed_at_ms: int
    moved: dict[tuple[str, str], int] = field(default_factory=dict)
    """(payer province, payee province) -> fen."""
    transfers: int = 0
    top_up: dict[str, int] = field(default_factory=dict)
    """Province -> what its regions' funds paid into their advances at this close."""
    settlements: int = 0
    booked: int = 0

    @property
    def provinces(self) -> list[str]:
        return sorted({p for pair in self.moved for p in pair})

    @property
    def net(self) -> dict[str, int]:
        """Province -> received less paid across provinces (flows within one cancel)."""
        net: dict[str, int] = defaultdict(int)
        for (payer, payee), amount in self.moved.items():
            net[payer] -= amount
            net[payee] += amount
        return {p: net[p] for p in self.provinces}

    @property
    def settlement(self) -> str:
        if self.state != "closed":
            return "open"
        if not self.settlements:
            return "nothing to settle" if not self.transfers else "not settled"
        if self.booked == self.settlements:
            return "booked"
        return f"booked by {self.booked} of {self.settlements} regions"

    def as_json(self) -> dict[str, Any]:
        matrix: dict[str, dict[str, int]] = defaultdict(dict)
        for (payer, payee), amount in sorted(self.moved.items()):
            matrix[payer][payee] = amount
        return {
            "window": self.window,
            "state": self.state,
            "opened_at_ms": self.opened_at_ms,
            "closed_at_ms": self.closed_at_ms,
            "transfers": self.transfers,
            "provinces": self.provinces,
            "moved_fen": dict(matrix),
            "net_fen": self.net,
            "top_up_fen": dict(sorted(self.top_up.items())),
            "settlement": self.settlement,
        }


def read_flows(db: sqlite3.Connection, window: int | None = None) -> list[WindowFlows]:
    """Every window's flows (or one window's), from a clearinghouse database."""
    where, args = ("WHERE window = ?", (window,)) if window is not None else ("", ())
    windows: dict[int, WindowFlows] = {}
    for number, state, opened, closed in db.execute(
        f"SELECT window, state, opened_at_ms, closed_at_ms FROM windows {where} ORDER BY window",
        args,
    ):
        windows[int(number)] = WindowFlows(int(number), str(state), int(opened), int(closed or 0))
    for number, payer, payee, amount in db.execute(
        f"SELECT window, payer_region, payee_region, amount_fen FROM clearing_entries {where}",
        args,
    ):
        w = windows.get(int(number))
        if w is None:
            continue
        pair = (province_code(payer), province_code(payee))
        w.moved[pair] = w.moved.get(pair, 0) + int(amount)
        w.transfers += 1
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "settlements" in tables:
        for number, region, top_up, state in db.execute(
            f"SELECT window, region, top_up_fen, state FROM settlements {where}", args
        ):
            w = windows.get(int(number))
            if w is None:
                continue
            province = province_code(region)
            w.top_up[province] = w.top_up.get(province, 0) + int(top_up)
            w.settlements += 1
            w.booked += state == "booked"
    return list(windows.values())


def read_flows_file(data_dir: Path, window: int | None = None) -> list[WindowFlows]:
    """The flows of a cluster's data directory (``SnapshotError`` if it has none)."""
    path = data_dir / CLEARINGHOUSE_FILE
    if not path.is_file():
        raise SnapshotError(f"no {CLEARINGHOUSE_FILE} in {data_dir}: not a cluster's data dir")
    with read_only(path) as db:
        return read_flows(db, window)


def flows_json(windows: list[WindowFlows]) -> dict[str, Any]:
    total = WindowFlows(0, "all", 0, 0)
    for w in windows:
        for pair, amount in w.moved.items():
            total.moved[pair] = total.moved.get(pair, 0) + amount
        total.transfers += w.transfers
    return {
        "windows": [w.as_json() for w in windows],
        "total": {
            "transfers": total.transfers,
            "moved_fen": total.as_json()["moved_fen"],
            "net_fen": total.net,
        },
    }


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}" if fen else "-"


def format_flows(windows: list[WindowFlows]) -> str:
    """Each window's matrix (yuan; rows pay, columns receive) and net positions."""
    if not windows:
        return "no clearing window yet"
    out: list[str] = []
    for w in windows:
        out.append(
            f"window {w.window} ({w.state}): {w.transfers} cross-region transfers;"
            f" settlement {w.settlement}"
        )
        provinces = w.provinces
        if not provinces:
            out.append("")
            continue
        width = max(12, *(len(_yuan(a)) + 1 for a in w.moved.values()))
        out.append(
            "payer \\ payee".ljust(14)
            + "".join(p.rjust(width) for p in provinces)
            + "net (¥)".rjust(16)
        )
        net = w.net
        for payer in provinces:
            cells = "".join(
                _yuan(w.moved.get((payer, payee), 0)).rjust(width) for payee in provinces
            )
            out.append(payer.ljust(14) + cells + f"{net[payer] / 100:,.2f}".rjust(16))
        if w.top_up:
            paid_in = ", ".join(f"{p} {v / 100:,.2f}" for p, v in sorted(w.top_up.items()) if v)
            out.append(f"paid into advances (¥): {paid_in or 'nothing'}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
