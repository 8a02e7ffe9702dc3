"""One transfer's timeline, read from the services' SQLite files without disturbing them.

The clearinghouse's record and its ``transfer_history`` say what was decided and when;
the regions' files say what happened to the money there: the payer region's hold and
its posting or release, the payee region's credit, the requesting region's bill (or
wallet transfer or premium payment) and its outcome, and both regions' book entries.
Every file is opened read-only (``mode=ro``), so a running service keeps its write lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearinghouse.service import clearinghouse_database
from clearinghouse.store import history_of
from regions.service import region_database

CLEARINGHOUSE_PLACE = "clearinghouse"
_REGION_FILE_PREFIX = "region-"


class TimelineError(Exception):
    """The data directory cannot be read as a cluster's (``str`` says why)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing that happened to the transfer, somewhere, at ``at_ms``."""

    at_ms: int
    place: str
    """``clearinghouse`` or ``region <code>``."""
    what: str


@dataclass(slots=True)
class RegionRecords:
    """What one region's file holds about the transfer (rows as the file has them)."""

    hold: dict[str, Any] | None = None
    bill: dict[str, Any] | None = None
    credit: dict[str, Any] | None = None
    journal: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.hold or self.bill or self.credit or self.journal)


@dataclass(slots=True)
class Timeline:
    transfer_id: str
    transfer: dict[str, Any] | None
    """The clearinghouse's record, or None when it never heard of the transfer (a bill
    refused or paid locally by its own region)."""
    history: list[dict[str, Any]]
    regions: dict[str, RegionRecords]

    def entries(self) -> list[Entry]:
        """Everything, in time order (at one instant: clearinghouse first, then regions)."""
        entries = [Entry(h["at_ms"], CLEARINGHOUSE_PLACE, _change(h)) for h in self.history]
        for code, records in sorted(self.regions.items()):
            entries += _region_entries(f"region {code}", records)
        ordered = sorted(enumerate(entries), key=lambda pair: (pair[1].at_ms, pair[0]))
        return [e for _, e in ordered]

    def as_json(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "clearinghouse": self.transfer,
            "history": self.history,
            "regions": {
                code: {
                    "hold": r.hold,
                    "bill": r.bill,
                    "credit": r.credit,
                    "journal": r.journal,
                }
                for code, r in sorted(self.regions.items())
            },
            "timeline": [
                {"at_ms": e.at_ms, "place": e.place, "what": e.what} for e in self.entries()
            ],
        }


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        sql = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise TimelineError(f"cannot open {path} read-only: {error}") from None
    sql.row_factory = sqlite3.Row
    try:
        yield sql
    finally:
        sql.close()


def _row(sql: sqlite3.Connection, table: str, transfer_id: str) -> dict[str, Any] | None:
    row = sql.execute(f"SELECT * FROM {table} WHERE transfer_id = ?", (transfer_id,)).fetchone()
    return None if row is None else dict(row)


def read_timeline(data_dir: Path, transfer_id: str) -> Timeline | None:
    """The transfer's timeline from the files in ``data_dir``, or None if no file there
    knows it."""
    ch_path = clearinghouse_database(data_dir)
    if not ch_path.exists():
        raise TimelineError(f"no clearinghouse database in {data_dir} ({ch_path.name})")
    try:
        with _read_only(ch_path) as sql:
            transfer = _row(sql, "transfers", transfer_id)
            history = [
                {
                    "seq": h.seq,
                    "at_ms": h.at_ms,
                    "from_state": None if h.from_state is None else h.from_state.value,
                    "to_state": h.to_state.value,
                    "event": h.event.value,
                    "detail": h.detail,
                }
                for h in history_of(sql, transfer_id)
            ]
    except sqlite3.Error as error:
        raise TimelineError(f"cannot read {ch_path}: {error}") from None
    if transfer is not None:
        transfer.pop("candidates", None)
        codes = [c for c in (transfer["payer_region"], transfer["payee_region"]) if c]
    else:  # only a region may know it: look in every region's file
        codes = sorted(
            p.stem.removeprefix(_REGION_FILE_PREFIX)
            for p in data_dir.glob(f"{_REGION_FILE_PREFIX}*.sqlite")
        )
    regions: dict[str, RegionRecords] = {}
    for code in dict.fromkeys(codes):
        path = region_database(data_dir, code)
        if not path.exists():
            continue
        records = _region_records(path, transfer_id)
        if transfer is not None or not records.empty:
            regions[code] = records
    if transfer is None and not regions:
        return None
    return Timeline(transfer_id, transfer, history, regions)


def _region_records(path: Path, transfer_id: str) -> RegionRecords:
    try:
        with _read_only(path) as sql:
            journal = sql.execute(
                "SELECT * FROM journal WHERE transfer_id = ? ORDER BY seq", (transfer_id,)
            ).fetchall()
            return RegionRecords(
                hold=_row(sql, "holds", transfer_id),
                bill=_row(sql, "bills", transfer_id),
                credit=_row(sql, "credits", transfer_id),
                journal=[dict(r) for r in journal],
            )
    except sqlite3.Error as error:
        raise TimelineError(f"cannot read {path}: {error}") from None


# --- as people read it ---


def _change(h: dict[str, Any]) -> str:
    before = h["from_state"] or "(new)"
    detail = f": {h['detail']}" if h["detail"] else ""
    return f"{before} -> {h['to_state']} on {h['event']}{detail}"


def _region_entries(place: str, r: RegionRecords) -> list[Entry]:
    out: list[Entry] = []
    if r.bill is not None:
        b = r.bill
        out.append(
            Entry(
                b["submitted_at_ms"],
                place,
                f"{b['flow']} request of {b['amount_fen']} fen submitted",
            )
        )
        if b.get("settled_at_ms") is not None:
            parts = [f"co-payer {b['paid_fen']}"]
            parts += [f"own account {b['own_paid_fen']}"] if b.get("own_paid_fen") else []
            parts += [f"wallet {b['wallet_paid_fen']}"] if b.get("wallet_paid_fen") else []
            outcome = "paid" if b["reason"] is None else f"refused ({b['reason']})"
            out.append(
                Entry(b["settled_at_ms"], place, f"outcome: {outcome}, {', '.join(parts)} fen")
            )
    if r.hold is not None:
        h = r.hold
        if h["held_fen"] > 0:
            what = f"hold of {h['held_fen']} fen (of {h['requested_fen']} asked)"
        elif h["payer"] is None:
            what = "an abort came before any reserve: never hold for it"
        else:
            what = f"reserve of {h['requested_fen']} fen refused ({h['reason']})"
        out.append(Entry(h["created_at_ms"], place, what))
        resolved = h.get("resolved_at_ms") is not None and h["payer"] is not None
        if resolved and h["state"] in ("posted", "voided"):
            reason = f" ({h['reason']})" if h["reason"] else ""
            out.append(Entry(h["resolved_at_ms"], place, f"hold {h['state']}{reason}"))
    if r.credit is not None:
        c = r.credit
        what = f"credited {c['amount_fen']} fen from {c['payer_region']}"
        out.append(Entry(c["at_ms"], place, what))
    for j in r.journal:
        accounts = f"{j['debit_account']} -> {j['credit_account']}"
        what = f"books: {j['phase']} {j['amount_fen']} fen {accounts}"
        out.append(Entry(j["at_ms"], place, what))
    return out


def format_timeline(timeline: Timeline) -> str:
    t = timeline.transfer
    if t is None:
        head = (
            f"transfer {timeline.transfer_id}: unknown to the clearinghouse (settled in its region)"
        )
    else:
        moved = f", {t['posted_fen']} fen moved" if t["state"] == "committed" else ""
        reason = f" ({t['reason']}: {t['detail']})" if t["reason"] else ""
        payer = f" from {t['payer']} in {t['payer_region']}" if t["payer"] else ""
        head = (
            f"transfer {timeline.transfer_id}: {t['flow']} of {t['amount_fen']} fen for "
            f"{t['beneficiary']} in {t['payee_region']}{payer}; {t['state']}{reason}{moved}"
        )
    entries = timeline.entries()
    if not entries:
        return head
    start = entries[0].at_ms
    width = max(len(e.place) for e in entries)
    lines = [head]
    lines += [f"{f'+{e.at_ms - start}':>9} ms  {e.place:<{width}}  {e.what}" for e in entries]
    return "\n".join(lines)
